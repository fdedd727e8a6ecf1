"""Root conftest: loads the lstm-claims pytest plugin when the package is not installed.

When installed (pip install -e .), the plugin is registered under the `pytest11` entry
point and loads itself; loading it twice would register its options twice.
"""
from importlib.metadata import entry_points

if not any(ep.value == "lstm_claims.plugin" for ep in entry_points(group="pytest11")):
    pytest_plugins = ["lstm_claims.plugin"]
