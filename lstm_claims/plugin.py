"""The lstm-claims pytest plugin: the claim suite's options, the implementation under test, xfails, results.

Inert unless asked (model: Hypothesis's own plugin). Installed in an environment, it adds
its options and the `claims`/`claim` markers, and nothing else happens in a pytest run that
does not collect the kit's claim suite (lstm_claims/suite): no fixture, no parametrization of
other tests, no Hypothesis profile loaded, no torch flag changed. When the suite is
collected, it loads and contract-checks the implementation once, switches TF32 off and sets
torch's thread count for the session (both restored at the end), and collects per-claim results.

Results: one ClaimLog per check case (what the runner recorded, and the test's outcome), folded
in collection order into the per-claim results (lstm_claims/results.py). With pytest-xdist
(`-n N`), the workers run the cases and record what the runner measured; each hands its
case logs to the controller in `config.workeroutput` at the end of its session
(pytest_testnodedown); the controller tallies the outcomes from the test reports, prints
the header, the progress lines and the summary, and writes claims.json from the same fold,
so the report is the one a serial run writes. The contract check and the header happen once,
on the controller; the session seed of a random profile goes to the workers in workerinput.

Options (group "lstm-claims"): see pytest_addoption, and the README's table.
"""
from __future__ import annotations

import json
import os
import random
import re
from dataclasses import dataclass

import pytest

from lstm_claims import __version__
from lstm_claims.names import CLAIM_IDS, DEFAULT_IMPL, DEFAULT_PROFILE, DEVICES, PROFILE_DERANDOMIZED
from lstm_claims.names import DTYPE_NAMES as DTYPES
from lstm_claims.results import ClaimLog, ClaimResult, dtype_figures, dtype_verdicts, dtypes_why_not

PROFILES = tuple(PROFILE_DERANDOMIZED)


# The heavy modules and names, bound by _load_kit when a run uses the claim suite.
torch = hypothesis = None
CellContractError = CellUnderTest = check_contract = CheckCase = cases_of = dtype_name = None
CLAIMS = all_claims = profile_settings = None


def _load_kit() -> None:
    """Import torch, Hypothesis and the claim records into this module, once, when a run uses the claim suite.

    The plugin is loaded into every pytest run of an environment where the kit is installed; at its
    load it imports only the constants of lstm_claims/names.py, so a run that never collects the claim
    suite does not pay torch's import (measured: 2.6 s added to a one-test pytest run) and does not
    need torch installed at all (tests/meta/test_plugin_is_inert.py)."""
    global torch, hypothesis, CellContractError, CellUnderTest, check_contract, CheckCase, cases_of, dtype_name
    global CLAIMS, all_claims, profile_settings
    if torch is not None:
        return
    import hypothesis

    from lstm_claims.claims.cell_under_test import CellContractError, CellUnderTest, check_contract
    from lstm_claims.claims.record import CheckCase, cases_of, dtype_name
    from lstm_claims.claims.registry import CLAIMS, all_claims
    from lstm_claims.profiles import profile_settings
    import torch  # last: its presence says the rest is there

ENV_IMPL = "CLAIMS_LSTM_IMPL"
REPLAY_OUT = "lstm-claims-replay"
_STATE = pytest.StashKey[dict]()
_WORKER_KEY = "lstm_claims"  # in xdist's workerinput (the session seed) and workeroutput (the case logs)


def pytest_addoption(parser):
    group = parser.getgroup("lstm-claims", "lstm-claims: the claim suite, the implementation under test")
    group.addoption("--lstm-impl", default=None, metavar="MODULE:ATTR",
                    help=f"the LSTM implementation under test, e.g. torch.nn:LSTMCell (default: ${ENV_IMPL} if "
                         f"set, else the kit's reference cell {DEFAULT_IMPL})")
    group.addoption("--claims-device", default="all", choices=("cpu", "cuda", "all"),
                    help="devices to check the claims on (default: all; CUDA cases skip with a reason when "
                         "no GPU is present)")
    group.addoption("--claims-profile", default=DEFAULT_PROFILE, choices=tuple(PROFILES),
                    help="the kit's Hypothesis profile for the claim checks (default: ci, derandomized, "
                         "30 examples; thorough: random seeds, 600 examples)")
    group.addoption("--claims-seed", default=None, type=int, metavar="N",
                    help="the session seed of a random profile (thorough), to replay a run (default: a fresh "
                         "one, printed in the header and claims.json)")
    group.addoption("--claims-json", default=None, metavar="PATH",
                    help="write the per-claim results (outcomes, examples, figures, counterexamples) to PATH "
                         "as JSON (default: not written; `lstm-claims run` uses it for its report)")
    group.addoption("--claims-ids", default=None, metavar="IDS",
                    help="run only the checks of these claims, comma-separated (e.g. L0,L5; default: all)")
    group.addoption("--claims-select", default=None, metavar="CASES",
                    help="run only these check cases, comma-separated ids as in the test ids "
                         "(e.g. L2-decomposition-cpu-float32; default: all)")
    group.addoption("--claims-progress", action="store_true", default=False,
                    help="print one line per claim as soon as all its checks have run (used by `lstm-claims run`)")
    group.addoption("--claims-fail-fast", action="store_true", default=False,
                    help="stop at the first failing check and report its first failing example unshrunk (for CI "
                         "gating; default: run everything and shrink failures)")
    group.addoption("--claims-threads", default=1, type=int, metavar="N",
                    help="torch threads while the claim suite runs (default: 1; the checks apply many small ops, "
                         "where extra threads only add synchronisation)")
    group.addoption("--xfails-file", default=None, metavar="FILE",
                    help="known departures of the implementation, one per line: a claim ID, optionally a device "
                         "and a dtype ('L0 cuda float16'); '#' starts a comment. The matching checks that run "
                         "the implementation are expected to fail (default: none)")


# --- configuration --------------------------------------------------------------------------

@dataclass(frozen=True)
class XfailEntry:
    claim_id: str
    device: str | None
    dtype: str | None
    reason: str
    where: str  # FILE:LINE

    def matches(self, case: CheckCase) -> bool:
        _load_kit()
        return (case.claim_id == self.claim_id and case.check.through_impl
                and self.device in (None, case.device) and self.dtype in (None, dtype_name(case.dtype)))

    def __str__(self):
        return " ".join(p for p in (self.claim_id, self.device, self.dtype) if p)


def read_xfails(path) -> list[XfailEntry]:
    """Entries of an xfails file; an unknown word is a usage error naming the line."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            body, _, comment = line.partition("#")
            words = body.split()
            if not words:
                continue
            ids = [w for w in words if w in CLAIM_IDS]
            devices = [w for w in words if w in DEVICES]
            dtypes = [w for w in words if w in DTYPES]
            unknown = [w for w in words if w not in ids + devices + dtypes]
            if unknown or not ids or len(devices) > 1 or len(dtypes) > 1:
                raise pytest.UsageError(
                    f"{path}:{lineno}: {line.strip()!r}: an entry is one or more claim IDs ({', '.join(CLAIM_IDS)}), "
                    f"optionally one device ({', '.join(DEVICES)}) and one dtype ({', '.join(DTYPES)})"
                    + (f"; {', '.join(map(repr, unknown))} is none of these" if unknown else ""))
            for cid in ids:
                out.append(XfailEntry(cid, devices[0] if devices else None, dtypes[0] if dtypes else None,
                                      comment.strip() or f"listed in {path}", f"{path}:{lineno}"))
    return out


def _impl_spec(config) -> tuple[str, str]:
    if config.getoption("lstm_impl"):
        return config.getoption("lstm_impl"), "--lstm-impl"
    if os.environ.get(ENV_IMPL):
        return os.environ[ENV_IMPL], f"${ENV_IMPL}"
    return DEFAULT_IMPL, "default"


def _csv(value) -> list[str]:
    return [w.strip() for w in (value or "").split(",") if w.strip()]


def pytest_configure(config):
    # Marker definitions only: they change nothing in a run that does not use them.
    config.addinivalue_line("markers", "claims: the claim suite (every check of a claim of CLAIMS.md)")
    config.addinivalue_line("markers", "claim(id): the claim ID (L0-L9, G1-G4, V1-V3, R1-R2) a test checks")
    if config.getoption("claims_fail_fast"):
        config.option.maxfail = 1  # stop the session at the first failing check
    spec, source = _impl_spec(config)
    ids = _csv(config.getoption("claims_ids"))
    unknown = [i for i in ids if i not in CLAIM_IDS]
    if unknown:
        raise pytest.UsageError(f"--claims-ids: {', '.join(unknown)} not a claim ID ({', '.join(CLAIM_IDS)})")
    xfails_path = config.getoption("xfails_file")
    profile = config.getoption("claims_profile")
    seed = config.getoption("claims_seed")
    worker = _is_worker(config)
    if worker and _WORKER_KEY in config.workerinput:
        seed = config.workerinput[_WORKER_KEY]["seed"]  # the controller's session seed: one seed for the run
    elif seed is None and not PROFILE_DERANDOMIZED[profile]:
        seed = random.SystemRandom().randrange(2 ** 32)
    config.stash[_STATE] = {
        "spec": spec, "source": source, "profile": profile, "seed": seed,
        "ids": ids or list(CLAIM_IDS), "select": set(_csv(config.getoption("claims_select"))),
        "xfails": read_xfails(xfails_path) if xfails_path else [],
        "impl_raised": None, "blocked": set(),  # an exception of the implementation, and the claims it blocked
        "cut": None, "active": False, "role": "worker" if worker else "serial",
        "log": ClaimLog(),  # the per-claim results, folded at the end of the session
        "case_logs": {},  # nodeid -> ClaimLog of that check case
        "order": {},  # nodeid -> position in collection order
        "item_cases": {},  # nodeid -> CheckCase
        "live": {},  # nodeid -> (examples, refuted) from the call reports (progress lines under xdist)
        "worker_logs": [], "workers_lost": [],  # the controller's: case logs from the workers, workers that died
        "remaining": {}, "xfail_hits": {}, "restore": {},
    }
    _CONFIG["config"] = config
    if config.pluginmanager.hasplugin("xdist") and not config.pluginmanager.has_plugin("lstm_claims_xdist"):
        config.pluginmanager.register(_XdistHooks(config), "lstm_claims_xdist")


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


def selected_devices(config) -> list[str]:
    choice = config.getoption("claims_device")
    return list(DEVICES) if choice == "all" else [choice]


# --- the suite's parametrization (called from lstm_claims/suite's pytest_generate_tests) -----------

def selected_cases(config) -> list[CheckCase]:
    _load_kit()
    st = config.stash[_STATE]
    cases = cases_of(all_claims(st["ids"]), devices=selected_devices(config))
    if st["select"]:
        known = {c.id for c in cases_of(all_claims())}
        unknown = sorted(st["select"] - known)
        if unknown:
            raise pytest.UsageError(f"--claims-select: no check case {', '.join(unknown)} "
                                    f"(case ids look like L2-decomposition-cpu-float32)")
        cases = [c for c in cases if c.id in st["select"]]
    return cases


def parametrize_cases(metafunc) -> None:
    _load_kit()
    config = metafunc.config
    st = config.stash[_STATE]
    params = []
    for case in selected_cases(config):
        marks = [pytest.mark.claims, pytest.mark.claim(case.claim_id)]
        if case.device == "cuda" and not torch.cuda.is_available():
            marks.append(pytest.mark.skip(reason="CUDA is not available on this machine (torch.cuda.is_available() "
                                                 "is False); the CUDA case runs where a GPU is present"))
        hits = [e for e in st["xfails"] if e.matches(case)]
        if hits:
            # Not strict per check: a departure shows in some checks of a claim, not all. A listed
            # entry none of whose checks failed is reported at the end of the session (stale entry).
            marks.append(pytest.mark.xfail(reason="; ".join(f"{e}: {e.reason}" for e in hits), strict=False))
        params.append(pytest.param(case, id=case.id, marks=marks))
    metafunc.parametrize("case", params)


# --- loading the implementation ---------------------------------------------------------------

def _claim_items(items):
    return [it for it in items if it.get_closest_marker("claims") and _case_of(it) is not None]


def _case_of(item) -> CheckCase | None:
    callspec = getattr(item, "callspec", None)
    case = callspec.params.get("case") if callspec else None
    # Every item of every run comes here: a parameter named "case" of another suite must not load the kit.
    if type(case).__module__ != "lstm_claims.claims.record":
        return None
    _load_kit()
    return case if isinstance(case, CheckCase) else None


def _collected(st, item_cases: dict) -> None:
    """The claim items of the session, in collection order (item_cases: nodeid -> CheckCase, ordered)."""
    st["item_cases"] = dict(item_cases)
    st["order"] = {nodeid: i for i, nodeid in enumerate(item_cases)}
    st["remaining"] = {}
    for case in item_cases.values():
        st["remaining"][case.claim_id] = st["remaining"].get(case.claim_id, 0) + 1
    st["active"] = bool(item_cases)
    if st["active"]:
        _load_kit()


def _load_and_check(st) -> CellUnderTest:
    """Load the implementation and check its contract on the devices and dtypes the collected cases run."""
    _load_kit()
    runs_impl = [c for c in st["item_cases"].values() if c.check.through_impl]
    try:
        cut = CellUnderTest.load(st["spec"])
        if runs_impl:
            for dev in sorted({c.device for c in runs_impl}):
                if dev == "cuda" and not torch.cuda.is_available():
                    continue
                for dtype in sorted({c.dtype for c in runs_impl if c.device == dev}, key=str):
                    check_contract(cut, dev, dtype)
    except CellContractError as exc:
        pytest.exit(f"lstm-claims: the cell under test breaks the LSTMCell contract: {exc}", returncode=2)
    return cut


def _float32_settings() -> list:
    """The TF32 settings the session switches off: (object, attribute, value), applied in order.

    The legacy allow_tf32 flags first, then, on a torch with the per-backend API (2.9+), its
    fp32_precision = "ieee" for cuBLAS, cuDNN convolutions and cuDNN RNNs. Why both: measured on
    torch 2.11 with an H200, allow_tf32 = False alone did not reach cuDNN's RNNs there
    (torch.backends.cudnn.rnn.fp32_precision stayed "tf32"; torch.nn.LSTM's float32 outputs were
    about 1900 u off at m = n = 1, about 120 u with "ieee"). Why this order: torch refuses a read
    of a legacy flag (torch.nn.RNN reads cudnn.allow_tf32) while the legacy and the new settings
    disagree; with the legacy flag False and both cuDNN operators "ieee" they agree
    (tests/meta/test_plugin_is_inert.py reads them back and restores them).
    """
    _load_kit()
    cudnn = torch.backends.cudnn
    settings = [(torch.backends.cuda.matmul, "allow_tf32", False), (cudnn, "allow_tf32", False)]
    for backend in (torch.backends.cuda.matmul, getattr(cudnn, "conv", None), getattr(cudnn, "rnn", None)):
        if backend is not None and hasattr(backend, "fp32_precision"):
            settings.append((backend, "fp32_precision", "ieee"))
    return settings


def _ieee_float32() -> list:
    """Float32 tolerances assume IEEE float32 products: TF32 off, returning what to restore.

    Every value is read before any is set: a legacy setter also writes the new API's values."""
    settings = _float32_settings()
    try:
        saved = [(obj, attr, getattr(obj, attr)) for obj, attr, _ in settings]
    except RuntimeError:
        # torch refuses to read a legacy flag after the caller set the new API alone: leave the legacy
        # flags as they are and set the new API only.
        settings = [s for s in settings if s[1] != "allow_tf32"]
        saved = [(obj, attr, getattr(obj, attr)) for obj, attr, _ in settings]
    for obj, attr, value in settings:
        setattr(obj, attr, value)
    return saved


def _restore_float32(saved: list) -> None:
    """The settings as they were, in the order they were set: the legacy flags, then the new API's values
    (which the legacy setters overwrote)."""
    for obj, attr, value in saved:
        setattr(obj, attr, value)


def _write_header(config) -> None:
    tr = config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None:
        tr.ensure_newline()
        for line in header_lines(config):
            tr.write_line(line)


def pytest_collection_finish(session):
    """When the claim suite is collected: load the implementation and check its contract once.

    Under xdist this runs on each worker (which collects and runs the tests): a worker loads
    the implementation quietly; the controller, which collects nothing, checks the contract
    and prints the header when the first worker reports its collection (_XdistHooks)."""
    st = session.config.stash[_STATE]
    _collected(st, {it.nodeid: _case_of(it) for it in _claim_items(session.items)})
    if not st["active"]:
        return
    # Workers load the implementation; the controller (or a serial run) also checks its contract, once.
    st["cut"] = CellUnderTest.load(st["spec"]) if st["role"] == "worker" else _load_and_check(st)
    # Session-wide settings the checks assume, restored in pytest_sessionfinish: float32 tolerances
    # assume IEEE float32 products (TF32's 10-bit mantissa would break them on Ampere+ GPUs), and the
    # checks' many small ops gain nothing from extra threads.
    st["restore"] = {"threads": torch.get_num_threads(), "float32": _ieee_float32()}
    torch.set_num_threads(session.config.getoption("claims_threads"))
    if st["role"] != "worker":
        _write_header(session.config)


def _kind(st) -> str:
    """What the kit found behind --lstm-impl (a cell, a sequence module, an adapter), for the header and claims.json."""
    _load_kit()
    try:
        cut = st.get("cut") or CellUnderTest.load(st["spec"])
        return cut.describe()
    except CellContractError as exc:
        return f"unknown ({exc})"


def header_lines(config) -> list[str]:
    _load_kit()
    st = config.stash[_STATE]
    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "not available (CUDA cases skip)"
    seed = st["seed"] if st["seed"] is not None else "derandomized (each check's seed derives from its case id)"
    return [
        f"lstm-claims {__version__}: cell under test {st['spec']} (from {st['source']})",
        f"  kind: {_kind(st)}",
        f"  torch {torch.__version__}; devices {', '.join(selected_devices(config))}; CUDA: {cuda}; TF32 off",
        f"  profile {st['profile']}; seed {seed}; {ENV_IMPL}={os.environ.get(ENV_IMPL, '(unset)')}",
        f"  xfails: {', '.join(map(str, st['xfails'])) or 'none'}",
    ]


# --- running a case (called from the suite's test template) -------------------------------------

def reproduce_command(config, case: CheckCase) -> str:
    """The command that replays `case` as this session ran it, from the directory the user ran in."""
    st = config.stash[_STATE]
    seed = f" --seed={st['seed']}" if st["seed"] is not None else ""
    return (f"lstm-claims run --lstm-impl={st['spec']} --profile={st['profile']}{seed} "
            f"--device={case.device or 'cpu'} --claims={case.claim_id} --select={case.id} --out={REPLAY_OUT}")


def run_case_in_session(request, case: CheckCase) -> None:
    _load_kit()
    from lstm_claims.claims.low_precision import examples_scale
    from lstm_claims.runner import ImplementationRaised, run_case

    __tracebackhide__ = True
    config = request.config
    st = config.stash[_STATE]
    if st["cut"] is None:
        st["cut"] = CellUnderTest.load(st["spec"])
    if case.check.through_impl and st["impl_raised"]:
        # The implementation already raised (a finding, reported once by the case it broke): the
        # checks it would block are not checked, rather than failed again with the same traceback.
        st["blocked"].add(case.claim_id)
        pytest.skip(f"not checked: the implementation under test raised in check {st['impl_raised']['case']} "
                    f"({st['impl_raised']['error']})")
    log = st["case_logs"].setdefault(request.node.nodeid, ClaimLog())
    settings_ = profile_settings(st["profile"])
    if config.getoption("claims_fail_fast"):
        # Fail fast: report the first failing example as drawn, without shrinking it.
        settings_ = hypothesis.settings(settings_, phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate])
    try:
        run_case(case, st["cut"] if case.check.through_impl else None, log, settings_=settings_,
                 session_seed=st["seed"], reproduce=reproduce_command(config, case),
                 examples_scale=examples_scale(case.dtype, st["profile"]))
    except ImplementationRaised as exc:
        st["impl_raised"] = {"case": case.id, "phase": exc.phase, "message": str(exc),
                             "error": f"{type(exc.original).__name__} in its {exc.phase}"}
        example = "\n".join(getattr(exc, "__notes__", []) or getattr(exc.__cause__, "__notes__", []) or [])
        pytest.fail(f"{exc}\n{example}".rstrip(), pytrace=False)


# --- outcomes, progress, summary -------------------------------------------------------------------

@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Where the test runs (the pytest process, or an xdist worker): name the case on the report, give
    the call report what the case recorded for the progress line, and the replay commands of a failure."""
    rep = yield
    st = item.config.stash[_STATE]
    case = st["item_cases"].get(item.nodeid)
    if case is None:
        return rep
    rep.lstm_claims = {"case": case.id}
    if rep.when == "call":
        r = st["case_logs"].get(item.nodeid, ClaimLog()).results.get(case.claim_id)
        rep.lstm_claims.update(examples=r.examples if r else 0, refuted=bool(r and r.counterexample is not None))
    if rep.failed and rep.when in ("setup", "call"):
        rep.sections.append(("lstm-claims", (
            f"claim {case.claim_id} failed for {st['spec']} (check {case.id}).\n"
            f"reproduce: {reproduce_command(item.config, case)}\n"
            f"      or: python -m pytest --pyargs lstm_claims.suite --lstm-impl={st['spec']} "
            f"--claims-profile={st['profile']}" + (f" --claims-seed={st['seed']}" if st["seed"] is not None else "")
            + f" --claims-select={case.id}")))
    return rep


def _report_case(st, report) -> CheckCase | None:
    case = st["item_cases"].get(report.nodeid)
    if case is None and isinstance(getattr(report, "lstm_claims", None), dict):
        case = _ALL_CASES().get(report.lstm_claims.get("case"))
        if case is not None:
            st["item_cases"][report.nodeid] = case
            st["order"].setdefault(report.nodeid, len(st["order"]))
    return case


def pytest_runtest_logreport(report):
    """Tally each case's outcome where the reports arrive: the pytest process, or xdist's controller."""
    config = _CONFIG.get("config")
    st = config.stash.get(_STATE, None) if config is not None else None
    if not st or st["role"] == "worker":
        return
    case = _report_case(st, report)
    if case is None:
        return
    if isinstance(getattr(report, "lstm_claims", None), dict) and "examples" in report.lstm_claims:
        st["live"][report.nodeid] = (report.lstm_claims["examples"], report.lstm_claims["refuted"])
    if report.when == "teardown" or (report.when != "call" and report.outcome == "passed"):
        return  # a setup that passed, a teardown: not an outcome of the check (an xdist crash is when "???")
    entry = st["case_logs"].setdefault(report.nodeid, ClaimLog())[case.claim_id]
    if hasattr(report, "wasxfail"):
        key = "xfailed" if report.skipped else "xpassed"
    else:
        key = report.outcome
    setattr(entry, key, getattr(entry, key) + 1)
    if key == "xfailed":
        for e in st["xfails"]:
            if e.matches(case):
                st["xfail_hits"][e] = st["xfail_hits"].get(e, 0) + 1
    if report.failed:
        longrepr = report.longrepr
        message = str(longrepr.reprcrash.message) if getattr(longrepr, "reprcrash", None) else str(longrepr)
        entry.failures.append((case.id, message.splitlines()[0][:500] if message else "",
                               reproduce_command(config, case)))


_ALL_CASES_CACHE: dict = {}


def _ALL_CASES() -> dict:
    """Every check case of every claim, by id (how the controller recognises the claim suite's node ids)."""
    _load_kit()
    if not _ALL_CASES_CACHE:
        _ALL_CASES_CACHE.update({c.id: c for c in cases_of(all_claims(), devices=DEVICES)})
    return _ALL_CASES_CACHE


def _unconditional(cid) -> bool:
    _load_kit()
    claim = CLAIMS.get(cid)
    return bool(claim and claim.unconditional)


@pytest.hookimpl(trylast=True)
def pytest_runtest_logfinish(nodeid, location):
    config = _CONFIG.get("config")
    if config is None or not config.getoption("claims_progress"):
        return
    st = config.stash[_STATE]
    case = st["item_cases"].get(nodeid)
    if case is None or st["role"] == "worker" or case.claim_id not in st["remaining"]:
        return
    cid = case.claim_id
    st["remaining"][cid] -= 1
    if st["remaining"][cid] == 0:
        r = _fold(st, cid).results.get(cid) or ClaimResult(cid)
        live = [v for n, v in st["live"].items() if getattr(st["item_cases"].get(n), "claim_id", None) == cid]
        if st["role"] == "controller":  # the workers' case logs arrive at the end; the reports said this much
            r.examples = sum(v[0] for v in live)
            if r.counterexample is None and any(v[1] for v in live):
                r.counterexample = {}
        verdict = r.verdict(unconditional=_unconditional(cid))
        tr = config.pluginmanager.get_plugin("terminalreporter")
        line = (f"{cid:>3}  {verdict:<22} checks passed {r.passed}, failed {r.failed}, xfailed {r.xfailed}, "
                f"skipped {r.skipped}; examples {r.examples}")
        if tr is not None:
            tr.ensure_newline()
            tr.write_line(line, red=verdict == "failed", green=verdict in ("holds", "holds-under-condition"))


_CONFIG: dict = {}


def xfails_report(config) -> dict:
    """Entries that match no check running the implementation (ignored), and stale ones (none of their checks failed)."""
    _load_kit()
    st = config.stash[_STATE]
    every_case = cases_of(all_claims())
    unmatched = [e for e in st["xfails"] if not any(e.matches(c) for c in every_case)]
    ran = list(st["item_cases"].values())
    stale = [e for e in st["xfails"] if e not in unmatched and any(e.matches(c) for c in ran)
             and not st["xfail_hits"].get(e)]
    return {"unmatched": unmatched, "stale": stale}


def claims_payload(config) -> dict:
    """Everything the run learnt, per claim ID (the schema of the report's claims.json)."""
    _load_kit()
    st = config.stash[_STATE]
    results = st["log"].results
    rerun = f"lstm-claims run --lstm-impl={st['spec']} --profile={st['profile']}" + (
        f" --seed={st['seed']}" if st["seed"] is not None else "")
    xf = xfails_report(config)
    late = len(st["order"])  # the case logs in collection order (as _fold folds them), for the per-dtype verdicts
    ordered = [(st["item_cases"].get(n), st["case_logs"][n]) for n in sorted(st["case_logs"],
                                                                              key=lambda n: st["order"].get(n, late))]
    out = {}
    for claim in all_claims():
        cid, r = claim.id, results.get(claim.id)
        entry = {"id": cid, "title": claim.title, "statement": claim.statement, "condition": claim.condition,
                 "quantity": claim.quantity, "unconditional": claim.unconditional,
                 "checks": [c.name for c in claim.checks]}
        raw = r.to_json() if r else {}
        entry["verdict"] = r.verdict(unconditional=claim.unconditional) if r else "not-run"
        entry["dtypes"], entry["dtypes_why_not"] = dtype_verdicts(claim, ordered), dtypes_why_not(claim)
        entry["figures_by_dtype"] = dtype_figures(claim, ordered)
        for key in ("examples", "passed", "failed", "xfailed", "xpassed", "skipped"):
            entry[key] = raw.get(key, 0)
        entry["expected_failure"] = bool(entry["xfailed"]) and not entry["failed"]
        entry["figures"] = raw.get("figures", {})
        entry["aggregation"] = raw.get("aggregation", {})  # how each figure aggregated over the examples
        entry["counterexample"] = raw.get("counterexample")
        entry["failures"] = [list(f[:2]) for f in raw.get("failures", [])]
        if raw.get("failures"):
            entry["reproduce"] = raw["failures"][0][2]
        else:
            entry["reproduce"] = raw.get("reproduce") or f"{rerun} --claims={cid} --out={REPLAY_OUT}"
        entry["stale_xfails"] = [str(e) for e in xf["stale"] if e.claim_id == cid]
        entry["blocked"] = cid in st["blocked"]  # checks not run: the implementation had raised (see top level)
        out[cid] = entry
    return {"kit_version": __version__, "impl": st["spec"], "impl_source": st["source"], "impl_kind": _kind(st),
            "torch_version": torch.__version__,
            "devices": [d for d in selected_devices(config) if d != "cuda" or torch.cuda.is_available()],
            "profile": st["profile"],
            "seed": st["seed"] if st["seed"] is not None else "derandomized: each check's seed derives from its case id",
            "xfails": [str(e) for e in st["xfails"]],
            "xfails_unmatched": [f"{e} ({e.where})" for e in xf["unmatched"]],
            "implementation_raised": st["impl_raised"],
            "claims_not_checked": sorted(st["blocked"], key=CLAIM_IDS.index),
            "claims": out}


def _fold(st, claim_id: str | None = None) -> ClaimLog:
    """The per-claim results: the case logs (of one claim, or all) folded in collection order."""
    log = ClaimLog()
    late = len(st["order"])
    for nodeid in sorted(st["case_logs"], key=lambda n: st["order"].get(n, late)):
        case = st["item_cases"].get(nodeid)
        if claim_id is None or (case is not None and case.claim_id == claim_id):
            log.merge(st["case_logs"][nodeid])
    return log


def pytest_sessionfinish(session, exitstatus):
    st = session.config.stash.get(_STATE, None)
    if not st or not st["active"]:
        return
    _load_kit()
    restore = st["restore"]
    if restore:
        torch.set_num_threads(restore["threads"])
        _restore_float32(restore["float32"])
    if st["role"] == "worker":
        # What this worker's cases recorded, for the controller (pytest_testnodedown); the outcomes
        # reach the controller in the test reports.
        session.config.workeroutput[_WORKER_KEY] = json.dumps(
            {"cases": [[nodeid, st["order"].get(nodeid), log.to_dict()] for nodeid, log in st["case_logs"].items()]},
            default=str)
        return
    for nodeid, index, data in st["worker_logs"]:
        if nodeid not in st["order"] and index is not None:
            st["order"][nodeid] = index
        st["case_logs"].setdefault(nodeid, ClaimLog()).merge(ClaimLog.from_dict(data))
    st["log"] = _fold(st)
    if xfails_report(session.config)["stale"] and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED  # a stale xfails entry fails the run (see the summary)
    path = session.config.getoption("claims_json", None)
    if path:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(claims_payload(session.config), fh, indent=2, default=str)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    st = config.stash.get(_STATE, None)
    if not st or not st["active"]:
        return
    results = st["log"].results
    tr = terminalreporter
    tr.section("lstm-claims: per-claim summary")
    tr.write_line(f"cell under test: {st['spec']}")
    for cid in CLAIM_IDS:
        if cid not in results:
            continue
        e = results[cid]
        verdict = e.verdict(unconditional=_unconditional(cid))
        figs = ", ".join(f"{k}={v:.3g}" for k, v in sorted(e.figures.items()) if isinstance(v, float))
        tr.write_line(f"{cid:>3}  {verdict:<22} checks passed {e.passed}, failed {e.failed}, "
                      f"xfailed {e.xfailed}, skipped {e.skipped}; examples {e.examples}" + (f"; {figs}" if figs else ""))
    if results.get("L0") and results["L0"].failed:
        tr.write_line("L0 failed: the cell is not the standard LSTM, and every other verdict presupposes it.",
                      red=True)
    xf = xfails_report(config)
    for e in xf["unmatched"]:
        tr.write_line(f"lstm-claims: warning: xfails entry {e} ({e.where}) matches no check that runs the "
                      f"implementation under test (its checks are proofs or measurements of torch's own modules); "
                      f"it is ignored", yellow=True)
    for e in xf["stale"]:
        tr.write_line(f"lstm-claims: xfails entry {e} ({e.where}) expected a failure, but every one of its checks "
                      f"that runs the implementation passed: remove the entry (the run fails until then)", red=True)
    if st["impl_raised"]:
        tr.write_line(f"lstm-claims: {st['impl_raised']['message']}", red=True)
        if st["blocked"]:
            tr.write_line(f"lstm-claims: not checked because of it: {', '.join(sorted(st['blocked'], key=CLAIM_IDS.index))}"
                          f" (their checks that run the implementation were skipped)", red=True)
    for node in st["workers_lost"]:
        tr.write_line(f"lstm-claims: xdist worker {node} went down before handing over its results: the examples "
                      f"and figures of the cases it ran are missing from the report (their outcomes are counted)",
                      red=True)


# --- pytest-xdist (`-n N`): registered in pytest_configure only where xdist is installed ------------

class _XdistHooks:
    """The controller's side of a run split over xdist workers (xdist's hooks exist only with xdist)."""

    def __init__(self, config):
        self.config = config

    def pytest_configure_node(self, node):
        """Every worker draws with the controller's session seed (a random profile), not one of its own."""
        node.workerinput[_WORKER_KEY] = {"seed": self.config.stash[_STATE]["seed"]}

    def pytest_xdist_node_collection_finished(self, node, ids):
        """The first worker's collection (every worker collects the same items in the same order): the
        controller's view of the claim suite; when it is there, check the contract and print the header."""
        st = self.config.stash[_STATE]
        if st["role"] == "controller":
            return
        st["role"] = "controller"
        if not any("test_claim[" in nodeid for nodeid in ids):
            return  # not the claim suite (lstm_claims/suite's test_claim): stay inert, load nothing
        every = _ALL_CASES()
        items = {}
        for nodeid in ids:
            m = re.search(r"\[([^\[\]]+)\]$", nodeid)
            if m and m.group(1) in every:
                items[nodeid] = every[m.group(1)]
        _collected(st, items)
        if st["active"]:
            _load_and_check(st)
            _write_header(self.config)

    def pytest_testnodedown(self, node, error):
        """A worker is done: keep its case logs, folded in collection order at the end of the session."""
        st = self.config.stash[_STATE]
        data = (getattr(node, "workeroutput", None) or {}).get(_WORKER_KEY)
        if data is None:
            if error is not None and st["active"]:
                st["workers_lost"].append(getattr(getattr(node, "gateway", None), "id", str(node)))
            return
        st["worker_logs"].extend(tuple(entry) for entry in json.loads(data)["cases"])
