"""References the claims are checked against.

Nothing here calls the code under test: `lstm_step` is the LSTM of CLAIMS.md written out
in plain float64 torch, `cell_state_jacobians` its closed-form Jacobians, and `symbolic`
the same objects in SymPy (for proofs and for checking the float64 references).
"""
