"""The lstm-claims pytest plugin: options, the cell under test, devices, dtypes, xfails.

Options (group "lstm-claims"):
  --lstm-impl=MODULE:ATTR   the cell under test (env CLAIMS_LSTM_IMPL; default: the kit's reference cell)
  --claims-device=cpu|cuda|all   devices to check (default all; CUDA cases skip with a reason without a GPU)
  --xfails-file=FILE        claim IDs the cell is known to depart from (one per line, '#' comments)
Hypothesis's own --hypothesis-profile selects `ci` (default) or `thorough`.
"""
from __future__ import annotations

import os
import json

import pytest
import torch
from hypothesis import settings

from lstm_claims.claims.cell_under_test import DEFAULT_IMPL, CellContractError, CellUnderTest, check_contract
from lstm_claims.claims.registry import CLAIM_IDS
from lstm_claims import __version__
from lstm_claims.profiles import DEFAULT_PROFILE
from lstm_claims.results import ClaimLog

ENV_IMPL = "CLAIMS_LSTM_IMPL"
DTYPES = {"float64": torch.float64, "float32": torch.float32}
_STATE = pytest.StashKey[dict]()


def pytest_addoption(parser):
    group = parser.getgroup("lstm-claims", "lstm-claims: the cell under test and where to check it")
    group.addoption("--lstm-impl", default=None, metavar="MODULE:ATTR",
                    help=f"the LSTM cell under test, e.g. torch.nn:LSTMCell (default: ${ENV_IMPL} if set, "
                         f"else the kit's reference cell {DEFAULT_IMPL})")
    group.addoption("--claims-device", default="all", choices=("cpu", "cuda", "all"),
                    help="devices to check the claims on (default: all; CUDA cases skip with a reason when "
                         "no GPU is present)")
    group.addoption("--claims-json", default=None, metavar="PATH",
                    help="write the per-claim results (outcomes, examples, figures, counterexamples) to PATH "
                         "as JSON (default: not written; `lstm-claims run` uses it for its report)")
    group.addoption("--claims-ids", default=None, metavar="IDS",
                    help="run only the checks of these claims, comma-separated (e.g. L0,L5; default: all)")
    group.addoption("--claims-progress", action="store_true", default=False,
                    help="print one line per claim as soon as all its checks have run (used by `lstm-claims run`)")
    group.addoption("--claims-threads", default=1, type=int, metavar="N",
                    help="torch threads while the claim suite runs (default: 1; the checks apply many small ops, "
                         "where extra threads only add synchronisation)")
    group.addoption("--xfails-file", default=None, metavar="FILE",
                    help="file of claim IDs the cell under test is known to break (one per line, '#' starts a "
                         "comment); those checks run as expected failures and an unexpected pass fails "
                         "(default: none)")


def _impl_spec(config) -> str:
    return config.getoption("lstm_impl") or os.environ.get(ENV_IMPL) or DEFAULT_IMPL


def read_xfails(path) -> dict[str, str]:
    """{claim ID: reason} from an xfails file; unknown IDs are a usage error."""
    out = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            body, _, comment = line.partition("#")
            for token in body.split():
                if token not in CLAIM_IDS:
                    raise pytest.UsageError(f"{path}:{lineno}: {token!r} is not a claim ID "
                                            f"({', '.join(CLAIM_IDS)})")
                out[token] = comment.strip() or f"listed in {path}"
    return out


def _make_examples_independent_of_imports():
    """Stop Hypothesis from mixing constants found in the project's imported modules into draws.

    Hypothesis (6.131+) sometimes draws a constant harvested from the *local* modules
    currently imported, so a derandomized test drew different examples when run alone
    (its reproduce command) than inside the full suite. Turning that source off makes the
    reproduce command replay exactly the examples of the run that failed. It is a private
    hook: on a Hypothesis without it this does nothing.
    """
    try:
        from hypothesis.internal.conjecture import providers
        empty = providers.Constants()
    except (ImportError, AttributeError, TypeError):
        return
    if hasattr(providers, "_get_local_constants"):
        providers._get_local_constants = lambda: empty


def pytest_configure(config):
    config.addinivalue_line("markers", "claims: the claim suite (every check of a claim of CLAIMS.md)")
    config.addinivalue_line("markers", "claim(id): the claim ID (L0-L9, G1-G4, V1-V3, R1-R2) a test checks")
    if not config.getoption("hypothesis_profile", None):
        settings.load_profile(DEFAULT_PROFILE)
    # Reference checks are float64 and float32 tolerances assume IEEE float32 products:
    # TF32 (10-bit mantissa) would break them on Ampere+ GPUs, so it is off for the session.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    xfails_path = config.getoption("xfails_file")
    config.stash[_STATE] = {
        "spec": _impl_spec(config),
        "cut": None,
        "xfails": read_xfails(xfails_path) if xfails_path else {},
        "log": ClaimLog(),
        "remaining": {},
        "item_claims": {},
    }
    _CONFIG["config"] = config
    _make_examples_independent_of_imports()


def selected_devices(config) -> list[str]:
    choice = config.getoption("claims_device")
    return ["cpu", "cuda"] if choice == "all" else [choice]


def pytest_report_header(config):
    st = config.stash[_STATE]
    spec = st["spec"]
    source = "--lstm-impl" if config.getoption("lstm_impl") else (f"${ENV_IMPL}" if os.environ.get(ENV_IMPL) else "default")
    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "not available (CUDA cases skip)"
    return [
        f"lstm-claims {__version__}: cell under test {spec} (from {source})",
        f"  torch {torch.__version__}; devices {', '.join(selected_devices(config))}; CUDA: {cuda}; TF32 off",
        f"  hypothesis profile {settings._current_profile}; {ENV_IMPL}={os.environ.get(ENV_IMPL, '(unset)')}",
        f"  xfails: {', '.join(sorted(st['xfails'])) or 'none'}",
    ]


def claim_id_of(item) -> str | None:
    mark = item.get_closest_marker("claim")
    return mark.args[0] if mark and mark.args else None


def _explicitly_parametrized(metafunc, name) -> bool:
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0]
        if name in ([n.strip() for n in names.split(",")] if isinstance(names, str) else names):
            return True
    return False


def pytest_generate_tests(metafunc):
    """`device` and `dtype` arguments expand over the selected devices and both dtypes (unless a test sets them)."""
    if "device" in metafunc.fixturenames and not _explicitly_parametrized(metafunc, "device"):
        params = []
        for dev in selected_devices(metafunc.config):
            marks = []
            if dev == "cuda" and not torch.cuda.is_available():
                marks = [pytest.mark.skip(reason="CUDA is not available on this machine (torch.cuda.is_available() "
                                                 "is False); the CUDA case runs where a GPU is present")]
            params.append(pytest.param(dev, marks=marks, id=dev))
        metafunc.parametrize("device", params)
    if "dtype" in metafunc.fixturenames and not _explicitly_parametrized(metafunc, "dtype"):
        metafunc.parametrize("dtype", [pytest.param(d, id=name) for name, d in DTYPES.items()])


def _claim_order(item):
    cid = claim_id_of(item)
    return CLAIM_IDS.index(cid) if cid in CLAIM_IDS else len(CLAIM_IDS)


def pytest_collection_modifyitems(session, config, items):
    # L0 first: every other claim presupposes it, so its verdict is reported before theirs.
    items.sort(key=_claim_order)
    wanted = config.getoption("claims_ids")
    if wanted:
        ids = {w.strip() for w in wanted.split(",") if w.strip()}
        unknown = ids - set(CLAIM_IDS)
        if unknown:
            raise pytest.UsageError(f"--claims-ids: {', '.join(sorted(unknown))} not a claim ID ({', '.join(CLAIM_IDS)})")
        keep = [it for it in items if claim_id_of(it) in ids]
        config.hook.pytest_deselected(items=[it for it in items if claim_id_of(it) not in ids])
        items[:] = keep
    remaining = config.stash[_STATE]["remaining"] = {}
    for item in items:
        cid = claim_id_of(item)
        if cid:
            remaining[cid] = remaining.get(cid, 0) + 1
    xfails = config.stash[_STATE]["xfails"]
    for item in items:
        cid = claim_id_of(item)
        if cid in xfails:
            item.add_marker(pytest.mark.xfail(reason=f"{cid}: {xfails[cid]}", strict=True))


def pytest_collection_finish(session):
    """Load the cell under test and check its contract once, before any claim runs."""
    if not any(item.get_closest_marker("claims") for item in session.items):
        return
    st = session.config.stash[_STATE]
    try:
        cut = CellUnderTest.load(st["spec"])
        for dev in selected_devices(session.config):
            if dev == "cuda" and not torch.cuda.is_available():
                continue
            for dtype in DTYPES.values():
                check_contract(cut, dev, dtype)
    except CellContractError as exc:
        pytest.exit(f"lstm-claims: the cell under test breaks the LSTMCell contract: {exc}", returncode=2)
    st["cut"] = cut
    st["threads_before"] = torch.get_num_threads()
    torch.set_num_threads(session.config.getoption("claims_threads"))
    st["item_claims"] = {item.nodeid: claim_id_of(item) for item in session.items if claim_id_of(item)}


@pytest.fixture(scope="session")
def cell_under_test(request) -> CellUnderTest:
    st = request.config.stash[_STATE]
    if st["cut"] is None:  # a test that needs the cell but was not marked `claims`
        st["cut"] = CellUnderTest.load(st["spec"])
    return st["cut"]


@pytest.fixture(scope="session")
def claim_log(request) -> ClaimLog:
    return request.config.stash[_STATE]["log"]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    cid = claim_id_of(item)
    if cid is None or rep.when not in ("setup", "call"):
        return rep
    entry = item.config.stash[_STATE]["log"][cid]
    if rep.when == "call" or rep.outcome != "passed":
        if hasattr(rep, "wasxfail"):
            key = "xpassed" if rep.outcome in ("passed", "failed") and rep.when == "call" and not rep.skipped else "xfailed"
        else:
            key = rep.outcome
        setattr(entry, key, getattr(entry, key) + 1)
    if rep.failed:
        message = str(rep.longrepr.reprcrash.message) if hasattr(rep.longrepr, "reprcrash") else str(rep.longrepr)
        entry.failures.append((item.nodeid, message.splitlines()[0][:500] if message else ""))
        st = item.config.stash[_STATE]
        profile = settings._current_profile
        rep.sections.append(("lstm-claims", (
            f"claim {cid} failed for {st['spec']} ({item.name}).\n"
            f"reproduce: python -m pytest '{item.nodeid}' --lstm-impl={st['spec']} --hypothesis-profile={profile}"
            + ("" if profile == "ci" else "  (plus the @reproduce_failure blob printed above)"))))
    return rep


@pytest.hookimpl(trylast=True)
def pytest_runtest_logfinish(nodeid, location):
    config = _CONFIG.get("config")
    if config is None or not config.getoption("claims_progress"):
        return
    st = config.stash[_STATE]
    cid = st["item_claims"].get(nodeid)
    if cid is None:
        return
    st["remaining"][cid] -= 1
    if st["remaining"][cid] == 0:
        from lstm_claims.claims.registry import CLAIMS
        r = st["log"][cid]
        claim = CLAIMS.get(cid)
        verdict = r.verdict(unconditional=bool(claim and claim.condition.startswith("always")))
        tr = config.pluginmanager.get_plugin("terminalreporter")
        line = (f"{cid:>3}  {verdict:<22} checks passed {r.passed}, failed {r.failed}, xfailed {r.xfailed}, "
                f"skipped {r.skipped}; examples {r.examples}")
        if tr is not None:
            tr.ensure_newline()
            tr.write_line(line, red=verdict == "failed", green=verdict in ("holds", "holds-under-condition"))


_CONFIG: dict = {}


def claims_payload(config) -> dict:
    """Everything the run learnt, per claim ID (the schema of the report's claims.json)."""
    from lstm_claims.claims.registry import CLAIMS
    st = config.stash[_STATE]
    results = st["log"].results
    profile = settings._current_profile
    rerun = f"lstm-claims run --lstm-impl={st['spec']} --profile={profile}"
    out = {}
    for cid in CLAIM_IDS:
        claim, r = CLAIMS.get(cid), results.get(cid)
        entry = {"id": cid, "title": claim.title if claim else "not implemented in this version of the kit",
                 "statement": claim.statement if claim else "", "condition": claim.condition if claim else "",
                 "quantity": claim.quantity if claim else ""}
        raw = r.to_json() if r else {}
        entry["verdict"] = r.verdict(unconditional=claim.condition.startswith("always")) if (r and claim) else "not-run"
        for key in ("examples", "passed", "failed", "xfailed", "xpassed", "skipped"):
            entry[key] = raw.get(key, 0)
        entry["expected_failure"] = bool(entry["xfailed"]) and not entry["failed"]
        entry["figures"] = raw.get("figures", {})
        entry["counterexample"] = raw.get("counterexample")
        entry["failures"] = raw.get("failures", [])
        if entry["failures"]:
            entry["reproduce"] = f"python -m pytest '{entry['failures'][0][0]}' --lstm-impl={st['spec']} " \
                                 f"--hypothesis-profile={profile}"
        else:
            entry["reproduce"] = raw.get("reproduce") or f"{rerun} --claims={cid}"
        out[cid] = entry
    seed = config.getoption("hypothesis_seed", None)
    return {"kit_version": __version__, "impl": st["spec"], "torch_version": torch.__version__,
            "devices": [d for d in selected_devices(config) if d != "cuda" or torch.cuda.is_available()],
            "profile": profile,
            "seed": seed if seed is not None else ("derandomized: each test's seed derives from its name"
                                                   if settings.default.derandomize else "random (printed on failure)"),
            "claims": out}


def pytest_sessionfinish(session, exitstatus):
    if _STATE in session.config.stash and "threads_before" in session.config.stash[_STATE]:
        torch.set_num_threads(session.config.stash[_STATE]["threads_before"])
    path = session.config.getoption("claims_json", None)
    if path and _STATE in session.config.stash:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(claims_payload(session.config), fh, indent=2, default=str)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    results = config.stash[_STATE]["log"].results
    if not results:
        return
    tr = terminalreporter
    payload = claims_payload(config)["claims"]
    tr.section("lstm-claims: per-claim summary")
    tr.write_line(f"cell under test: {config.stash[_STATE]['spec']}")
    for cid in CLAIM_IDS:
        if cid not in results:
            continue
        e = results[cid]
        figs = ", ".join(f"{k}={v:.3g}" for k, v in sorted(e.figures.items()) if isinstance(v, float))
        tr.write_line(f"{cid:>3}  {payload[cid]['verdict']:<22} checks passed {e.passed}, failed {e.failed}, "
                      f"xfailed {e.xfailed}, skipped {e.skipped}; examples {e.examples}" + (f"; {figs}" if figs else ""))
    if results.get("L0") and results["L0"].failed:
        tr.write_line("L0 failed: the cell is not the standard LSTM, and every other verdict presupposes it.",
                      red=True)
