"""Root conftest of the kit's repository (not installed): the kit's own test run.

* Loads the lstm-claims pytest plugin when the package is not installed (installed, it is
  registered under the `pytest11` entry point; loading it twice would register its options twice).
* The kit's own property tests (tests/meta) run under the kit's `ci` settings (derandomized,
  30 examples) unless --hypothesis-profile says otherwise. This is the repository's choice for
  its own tests; the plugin itself loads no profile (it is inert outside the claim suite).
"""
import importlib.util
from importlib.metadata import entry_points

import pytest

# One clear message, not an import traceback, when the kit's dependencies are not installed yet.
_MISSING = [m for m in ("torch", "hypothesis", "sympy", "numpy") if importlib.util.find_spec(m) is None]
if _MISSING:
    pytest.exit(f"lstm-claims: {', '.join(_MISSING)} not installed in this Python; install the kit first: "
                f"python3 -m pip install -c constraints.txt -e \".[test]\" (the README's test command)", returncode=4)

from hypothesis import settings  # noqa: E402

from lstm_claims.profiles import PROFILES  # noqa: E402

if not any(ep.value == "lstm_claims.plugin" for ep in entry_points(group="pytest11")):
    pytest_plugins = ["lstm_claims.plugin"]

settings.register_profile("lstm-claims-dev", parent=PROFILES["ci"])


def pytest_configure(config):
    if not config.getoption("hypothesis_profile", None):
        settings.load_profile("lstm-claims-dev")
