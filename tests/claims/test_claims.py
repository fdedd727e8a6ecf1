"""The claim suite inside the kit's own test run: the installed suite's template, collected here."""
from lstm_claims.suite.test_claims import pytest_generate_tests, test_claim  # noqa: F401
