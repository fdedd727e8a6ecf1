"""Hypothesis strategies for the claim suite (public, keyword-only, validated early)."""
from lstm_claims.strategies.lstm_problems import StepProblem, step_problems

__all__ = ["StepProblem", "step_problems"]
