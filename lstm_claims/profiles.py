"""Hypothesis profiles, registered in one place and selected by name (--hypothesis-profile).

ci (the default): derandomized (each test's seed is derived from its name, so every run
  draws the same examples), few examples, no example database: the whole claim suite
  in about two minutes on a 2-core machine.
thorough: random seeds (printed on failure with a reproduce blob), many more examples,
  the example database under .hypothesis/ (ignored by git): for nightly runs.
"""
from hypothesis import HealthCheck, settings

CI, THOROUGH = "ci", "thorough"
DEFAULT_PROFILE = CI

_common = dict(deadline=None, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

settings.register_profile(CI, max_examples=30, derandomize=True, database=None, **_common)
settings.register_profile(THOROUGH, max_examples=600, derandomize=False, **_common)
