"""Claim: the wheel is the product.

The wheel built from this repository, installed with its dependencies into a FRESH virtual
environment (no system site-packages, nothing of the repository on the import path), is a
complete lstm-claims: from a directory outside the repository

  * `lstm-claims run --claims L0` exits 0 and writes claims.json with L0 "holds";
  * `lstm-claims run --claims L1 --lstm-impl mycell:MyCell` checks a cell defined in a
    module of the caller's directory and exits 0;
  * `lstm-claims bench --smoke` exits 0 and writes bench.json;
  * `lstm-claims report` re-renders the report and exits 0;

and the distribution installs ONE top-level name: `import lstm_claims.strategies` and
`import lstm_claims.claims.registry` work while `import strategies`, `claims`, `reference`
and `benchmarks` fail with ModuleNotFoundError, and the installed files list
(importlib.metadata.files('lstm-claims')) holds nothing at the top of site-packages but
lstm_claims/ and its .dist-info/.

The wheel is built (pip wheel --no-deps --no-build-isolation, with the running
interpreter's setuptools, pinned in constraints.txt) from a copy of the working tree's
files that git does not ignore, so that no build/ or stale build/lib of the checkout can
leak into it and the checkout is not written to. The venv is built once per module. By
default only the wheel is installed into it and its dependencies (torch, hypothesis, ...)
are the test runner's, reached through a path line in a .pth file, so CI does not spend a
minute unpacking torch; with LSTM_CLAIMS_FULL_INSTALL=1 the dependencies are installed too,
with `-c constraints.txt` (torch the CPU wheel): that run took 4 minutes on a 2-core machine,
`bench --smoke` the largest part (55 to 330 s depending on the load). The smoke run therefore
starts in the background as soon as the venv is ready and runs beside the claim runs and imports
of the other tests (the same commands, checked the same way; the module's wall time drops by
theirs). Run with -s to see the time of each phase.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from tests.meta.bench_smoke_expectations import check_smoke_summary

ROOT = Path(__file__).resolve().parents[2]
CONSTRAINTS = ROOT / "constraints.txt"
TIMEOUT = 600
# Source folders of the repository and where the wheel puts them ([tool.setuptools.package-dir]).
SOURCE_TO_WHEEL = {
    "lstm_claims": "lstm_claims",
    "claims": "lstm_claims/claims",
    "strategies": "lstm_claims/strategies",
    "reference": "lstm_claims/reference",
    "benchmarks": "lstm_claims/benchmarks",
}
# Non-Python files the installed kit reads at run time.
REQUIRED_DATA = ["lstm_claims/suite/pytest.ini", "lstm_claims/suite/test_claims.py",
                 "lstm_claims/benchmarks/pytest.ini", "lstm_claims/benchmarks/conftest.py"]
REPO_FOLDERS = ["strategies", "claims", "reference", "benchmarks"]
# Variables of the calling (test) environment that must not reach the installed kit.
SCRUBBED_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTEST_ADDOPTS",
                "PYTEST_PLUGINS", "CLAIMS_LSTM_IMPL", "PYTEST_CURRENT_TEST", "__PYVENV_LAUNCHER__")

MYCELL = "import torch\n\n\nclass MyCell(torch.nn.LSTMCell):\n    pass\n"

TIMINGS: dict[str, float] = {}


def _show(proc: subprocess.CompletedProcess) -> str:
    cmd = proc.args if isinstance(proc.args, str) else " ".join(map(str, proc.args))
    return (f"\n$ {cmd}\nexit status {proc.returncode}\n--- stdout ---\n{proc.stdout[-20000:]}"
            f"\n--- stderr ---\n{proc.stderr[-20000:]}")


def _run(cmd, *, cwd, env=None, phase=None) -> subprocess.CompletedProcess:
    start = time.perf_counter()
    try:
        proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"timed out after {TIMEOUT} s: {' '.join(map(str, cmd))}\n--- stdout ---\n{exc.stdout}"
                    f"\n--- stderr ---\n{exc.stderr}")
    if phase:
        TIMINGS[phase] = time.perf_counter() - start
        print(f"[packaging] {phase}: {TIMINGS[phase]:.1f} s")
    return proc


def _source_files() -> list[Path]:
    """The working tree's files that git does not ignore (tracked or not), relative to ROOT."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                             capture_output=True, text=True, timeout=60, check=True).stdout
        names = [Path(n) for n in out.split("\0") if n]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: everything but the usual debris
        skip = {".git", "build", "dist", "__pycache__", ".hypothesis", ".benchmarks", ".pytest_cache", ".venv"}
        names = [p.relative_to(ROOT) for p in ROOT.rglob("*")
                 if p.is_file() and not skip.intersection(p.relative_to(ROOT).parts)
                 and not any(part.endswith(".egg-info") for part in p.relative_to(ROOT).parts)]
    return [n for n in names if (ROOT / n).is_file()]  # tracked files deleted in the working tree drop out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel of the working tree, built from a clean copy of it."""
    if importlib.util.find_spec("setuptools") is None:
        pytest.fail(f"setuptools is not installed in {sys.executable}: building the wheel without build isolation "
                    f"(no network) needs it; install it with `pip install -c constraints.txt setuptools`")
    base = tmp_path_factory.mktemp("wheel")
    src, dist = base / "src", base / "dist"
    for name in _source_files():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, src / name)
    proc = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                 "--disable-pip-version-check", "-w", dist, src], cwd=base, phase="build wheel")
    assert proc.returncode == 0, "building the wheel failed" + _show(proc)
    wheels = list(dist.glob("lstm_claims-*.whl"))
    assert len(wheels) == 1, f"expected one lstm_claims wheel in {dist}, found {os.listdir(dist)}" + _show(proc)
    return wheels[0]


# LSTM_CLAIMS_FULL_INSTALL=1: install the wheel's dependencies into the venv too (with -c constraints.txt;
# a minute or more). Otherwise they are the test runner's own (see the venv fixture).
FULL_INSTALL = "LSTM_CLAIMS_FULL_INSTALL"


def proc_site(python) -> str:
    out = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, timeout=120, env=_clean_env())
    return out.stdout.strip()


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory):
    """A fresh venv (no system site-packages) with the wheel and its pinned dependencies installed."""
    base = tmp_path_factory.mktemp("venv")
    env_dir = base / "venv"
    proc = _run([sys.executable, "-m", "venv", env_dir], cwd=base, env=_clean_env(), phase="create venv")
    assert proc.returncode == 0, "python -m venv failed" + _show(proc)
    bindir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / ("python.exe" if os.name == "nt" else "python")
    if os.environ.get(FULL_INSTALL) == "1":
        proc = _run([python, "-m", "pip", "install", "--disable-pip-version-check", "-c", CONSTRAINTS, wheel],
                    cwd=base, env=_clean_env(), phase="install wheel + dependencies")
    else:
        # The dependencies come from the running interpreter's site-packages through a .pth path line
        # (a plain path entry: the .pth files there, the kit's own editable finder among them, are not
        # processed), and only the wheel is installed: seconds instead of a minute of unpacking torch.
        site = Path(proc_site(python))
        deps = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
        (site / "_dependencies_of_the_test_runner.pth").write_text("\n".join(deps) + "\n")
        proc = _run([python, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check", wheel],
                    cwd=base, env=_clean_env(), phase="install wheel + dependencies")
    assert proc.returncode == 0, "installing the wheel into the fresh venv failed" + _show(proc)
    print(f"[packaging] venv + install: {TIMINGS['create venv'] + TIMINGS['install wheel + dependencies']:.1f} s")
    # Not removed at teardown: deleting a just-written torch install took 80-90 s on the kit's CI machine
    # (an older one, about 5 s); pytest's basetemp retention (the last 3 sessions) removes it later.
    return {"dir": env_dir, "bin": bindir, "python": python}


def _clean_env(bindir: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env["PYTHONNOUSERSITE"] = "1"
    if bindir is not None:
        env["PATH"] = os.pathsep.join([str(bindir), env.get("PATH", "")])
    return env


class _Background:
    """A command started now and waited for later, its output in files (no pipe to fill)."""

    def __init__(self, cmd, *, cwd, env, phase):
        self.cmd, self.phase, self.start = [str(c) for c in cmd], phase, time.perf_counter()
        self.out, self.err = (Path(cwd) / f".{phase.split()[-1].strip('-')}.{k}" for k in ("stdout", "stderr"))
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen(self.cmd, cwd=cwd, env=env, stdout=out, stderr=err, text=True)

    def wait(self) -> subprocess.CompletedProcess:
        try:
            rc = self.proc.wait(timeout=max(1.0, TIMEOUT - (time.perf_counter() - self.start)))
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"timed out after {TIMEOUT} s: {' '.join(self.cmd)}\n--- stdout ---\n{self.out.read_text()}"
                        f"\n--- stderr ---\n{self.err.read_text()}")
        TIMINGS[self.phase] = time.perf_counter() - self.start
        print(f"[packaging] {self.phase}: {TIMINGS[self.phase]:.1f} s (in the background from the venv's start)")
        return subprocess.CompletedProcess(self.cmd, rc, self.out.read_text(), self.err.read_text())

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def user(venv, tmp_path_factory):
    """A user's directory outside the repository, with mycell.py, and how to run commands there.

    `lstm-claims bench --smoke` (the module's longest command, a minute or more) starts here, in the
    background, so that the claim runs and imports below use the machine's other core meanwhile;
    test_bench_smoke_outside_the_repository waits for it and checks it as before."""
    work = tmp_path_factory.mktemp("user")
    assert ROOT not in work.resolve().parents, f"{work} must be outside the repository {ROOT}"
    (work / "mycell.py").write_text(MYCELL)
    env = _clean_env(venv["bin"])
    assert str(ROOT) not in env.get("PYTHONPATH", "")

    def resolve(name):
        exe = shutil.which(str(name), path=env["PATH"]) if name in ("lstm-claims", "python") else name
        assert exe and Path(exe).parent == venv["bin"], f"{name} resolves to {exe}, not the venv's"
        return exe

    def run(*args, phase=None, cwd=work):
        return _run([resolve(args[0]), *args[1:]], cwd=cwd, env=env, phase=phase)

    bench = _Background([resolve("lstm-claims"), "bench", "--smoke", "--out", "bench"], cwd=work, env=env,
                        phase="lstm-claims bench --smoke")
    yield {"dir": work, "run": run, "bench": bench}
    bench.kill()  # only if its test did not run (deselected): nothing is left running


@pytest.fixture(scope="module")
def l0_run(user):
    # L0's two small checks (its kernel-regime checks run in the kit's own suite): the plumbing is what is tested.
    proc = user["run"]("lstm-claims", "run", "--claims", "L0", "--select", "L0-forward-cpu-float32,L0-backward-cpu-float64",
                       "--out", "rep", phase="lstm-claims run --claims L0")
    return proc, user["dir"] / "rep"


def test_wheel_holds_every_module_and_the_data_files(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [f for f in REQUIRED_DATA if f not in names]
    for name in _source_files():
        if name.suffix not in (".py", ".ini") or name.parts[0] not in SOURCE_TO_WHEEL:
            continue
        target = "/".join([SOURCE_TO_WHEEL[name.parts[0]], *name.parts[1:]])
        if target not in names:
            missing.append(f"{target} (from {name.as_posix()})")
    assert not missing, f"the wheel {wheel.name} lacks {missing}; it holds {sorted(names)}"
    tops = {n.split("/")[0] for n in names}
    assert tops == {"lstm_claims", wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info"}, tops


def test_run_L0_outside_the_repository_holds(l0_run):
    proc, out = l0_run
    assert proc.returncode == 0, _show(proc)
    report = json.loads((out / "claims.json").read_text())
    assert report["claims"]["L0"]["verdict"] == "holds", json.dumps(report["claims"]["L0"], indent=1) + _show(proc)
    assert (out / "index.html").is_file()


def test_run_L1_on_a_cell_from_the_users_directory(user):
    proc = user["run"]("lstm-claims", "run", "--claims", "L1", "--lstm-impl", "mycell:MyCell", "--out", "rep2",
                       phase="lstm-claims run --claims L1 --lstm-impl mycell:MyCell")
    assert proc.returncode == 0, _show(proc)
    report = json.loads((user["dir"] / "rep2" / "claims.json").read_text())
    assert report["impl"] == "mycell:MyCell", report["impl"]
    assert report["claims"]["L1"]["verdict"] == "holds", json.dumps(report["claims"]["L1"], indent=1) + _show(proc)


def test_bench_smoke_outside_the_repository(user):
    proc = user["bench"].wait()  # `lstm-claims bench --smoke --out bench`, started with the user's directory
    assert proc.returncode == 0, _show(proc)
    assert (user["dir"] / "bench" / "bench.json").is_file(), _show(proc)
    # The kit's only smoke run of the benchmarks: it must collect and pass what CI expects of them.
    check_smoke_summary(json.loads((user["dir"] / "bench" / "bench.json").read_text()), proc.returncode)


def test_report_rerenders_outside_the_repository(user, l0_run):
    proc = user["run"]("lstm-claims", "report", "--out", "rep", phase="lstm-claims report")
    assert proc.returncode == 0, _show(proc)
    assert (l0_run[1] / "index.html").is_file(), _show(proc)


@pytest.mark.parametrize("name", REPO_FOLDERS)
def test_repository_folders_are_not_installed_as_top_level_names(user, tmp_path, name):
    proc = user["run"]("python", "-c", f"import {name}", cwd=tmp_path)
    assert proc.returncode != 0, f"`import {name}` succeeded in the fresh venv" + _show(proc)
    assert f"ModuleNotFoundError: No module named '{name}'" in proc.stderr, _show(proc)


def test_the_subpackages_import_from_the_installed_package(user, venv, tmp_path):
    code = ("import lstm_claims, lstm_claims.strategies, lstm_claims.claims.registry, lstm_claims.reference, "
            "lstm_claims.benchmarks; print(lstm_claims.__file__); print(lstm_claims.claims.registry.__file__)")
    proc = user["run"]("python", "-c", code, cwd=tmp_path)
    assert proc.returncode == 0, _show(proc)
    for line in proc.stdout.split():
        path = Path(line).resolve()
        assert venv["dir"].resolve() in path.parents, f"{path} is not in the venv: the repository leaked in" + _show(proc)


def test_installed_files_have_one_top_level_package(user, tmp_path):
    code = ("import json; from importlib.metadata import distribution as d; dist = d('lstm-claims'); "
            "print(json.dumps({'files': [str(f) for f in dist.files], 'top_level': dist.read_text('top_level.txt')}))")
    proc = user["run"]("python", "-c", code, cwd=tmp_path)
    assert proc.returncode == 0, _show(proc)
    data = json.loads(proc.stdout)
    # Entries starting with ".." lie outside site-packages (the console script in bin/).
    inside = [f for f in data["files"] if not f.replace("\\", "/").startswith("../")]
    tops = {f.replace("\\", "/").split("/")[0] for f in inside}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"lstm_claims"}, sorted(tops)
    assert len([t for t in tops if t.endswith(".dist-info")]) == 1, sorted(tops)
    assert not [f for f in inside if f.endswith(".pth")], "the wheel installs a .pth file"
    assert (data["top_level"] or "lstm_claims").split() == ["lstm_claims"], data["top_level"]
