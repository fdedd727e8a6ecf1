"""Hypothesis strategies for the claim suite (public, keyword-only, validated early)."""
from strategies.lstm_problems import StepProblem, step_problems

__all__ = ["StepProblem", "step_problems"]
