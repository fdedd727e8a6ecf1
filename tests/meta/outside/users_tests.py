"""A user's own test module using lstm_claims.testing (run by tests/meta/test_plugin_is_inert.py)."""
from lstm_claims.testing import parametrize_with_checks


@parametrize_with_checks(["torch.nn:LSTMCell", "buggy_cell:ForgetsTwice"], claims=("L0", "L3"), devices=("cpu",),
                         checks=("forward", "backward", "distance-from-identity"), dtypes=("float64", "float32"))
def test_lstm_claims(impl, check):
    check(impl)
