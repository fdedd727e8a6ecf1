"""The claim suite: one test per check case of every claim record (lstm_claims.claims.registry).

Test ids read `test_claim[<claim>-<check>-<device>-<dtype>]`, e.g.
`test_claim[L2-decomposition-cpu-float32]`. Run it with `lstm-claims run`, or inside a
pytest run with `pytest --pyargs lstm_claims.suite --lstm-impl=MODULE:ATTR`. Nothing here
is specific to a claim: the records say what runs.
"""
from lstm_claims import plugin


def pytest_generate_tests(metafunc):
    if "case" in metafunc.fixturenames:
        plugin.parametrize_cases(metafunc)


def test_claim(request, case):
    __tracebackhide__ = True
    plugin.run_case_in_session(request, case)
