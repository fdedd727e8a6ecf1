"""`lstm-claims`: run the claim suite and write the report; run the benchmarks.

    lstm-claims run   [--lstm-impl MODULE:ATTR] [--profile ci|thorough] [--seed N] [--device cpu|cuda|all]
                      [--claims IDS] [--select CASES] [--xfails-file FILE] [--out DIR] [-n N]
    lstm-claims bench [--out DIR] [--smoke] [--lstm-impl MODULE:ATTR [--impl-only]]
    lstm-claims report [--out DIR]        (re-render DIR/index.html from DIR/claims.json and DIR/bench.json)

`run` runs the installed claim suite (lstm_claims/suite, generated from the claim records)
in a pytest subprocess with the suite's own configuration, printing one line per claim as
it finishes, then the verdict table, and writes DIR/claims.json and DIR/index.html. It
works from any directory: --lstm-impl modules, --out and --xfails-file resolve against the
directory it is run from. `-n N` runs the suite on N pytest-xdist workers (`auto`: one per
core), with the same report as a serial run. Exit status: 0 every check passed, 1 a check
failed, 2 a usage or contract error (one message).

`bench` runs the installed benchmark folder (lstm_claims/benchmarks) and writes DIR/bench.json
and the page. With --lstm-impl it also times that implementation against a loop of
torch.nn.LSTMCell, the fused torch.nn.LSTM and the GEMM floor (benchmarks/bench_impl.py), after
checking its contract as `run` does; --impl-only times that alone. --smoke runs each of the
kit's benchmarks once, untimed, and the implementation's at tiny sizes, timed.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
SUITE = Path(__file__).resolve().parent / "suite"


def _error(message: str) -> int:
    print(f"lstm-claims: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lstm-claims", description="Verify the gradient-flow claims of an LSTM cell.")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the claim suite and write the report")
    run.add_argument("--lstm-impl", default=None, metavar="MODULE:ATTR",
                     help="cell under test (default: $CLAIMS_LSTM_IMPL, else the kit's reference cell)")
    run.add_argument("--profile", default="ci", choices=("ci", "thorough"),
                     help="Hypothesis profile (default: ci, about 2 minutes serially on 2 cores, 70 s with -n 2; "
                          "thorough: nightly, about 31 minutes serially, 14 with -n 2)")
    run.add_argument("--seed", default=None, type=int, metavar="N",
                     help="session seed of the thorough profile, to replay a run (default: a fresh one, printed)")
    run.add_argument("--device", default="all", choices=("cpu", "cuda", "all"),
                     help="devices to check (default: all; CUDA skips with a reason without a GPU)")
    run.add_argument("--out", default="report", type=Path, help="report folder (default: report/)")
    run.add_argument("--claims", default=None, metavar="IDS", help="only these claim IDs, comma-separated")
    run.add_argument("--select", default=None, metavar="CASES",
                     help="only these check cases, comma-separated (e.g. L2-decomposition-cpu-float32, as a "
                          "failure's reproduce command names them)")
    run.add_argument("--xfails-file", default=None, metavar="FILE", help="claim IDs the cell is known to break")
    run.add_argument("--fail-fast", action="store_true",
                     help="stop at the first failing check, its first failing example unshrunk (CI gating: a buggy "
                          "cell is reported in seconds; the report covers what ran)")
    run.add_argument("-n", "--numprocesses", default=None, metavar="N", type=_workers,
                     help="run the suite on N pytest-xdist workers, or 'auto' (one per CPU core); the report is "
                          "the one a serial run writes (default: serial; needs pytest-xdist)")
    bench = sub.add_parser("bench", help="run the benchmarks of the recurrence core and add them to the report")
    bench.add_argument("--out", default="report", type=Path, help="report folder (default: report/)")
    bench.add_argument("--smoke", action="store_true",
                       help="run each benchmark once, untimed (as CI does); with --lstm-impl, the implementation's "
                            "benchmarks run timed at tiny sizes (seconds), so that bench.json has its ratios")
    bench.add_argument("--lstm-impl", default=None, metavar="MODULE:ATTR",
                       help="also time this implementation (torch.nn.LSTMCell's contract, as for `run`) against a "
                            "loop of torch.nn.LSTMCell, the fused torch.nn.LSTM and the GEMM floor: T=100, B 1 and "
                            "64, n 128 and 512, forward and forward+backward, float32 and bfloat16 (about two "
                            "more minutes)")
    bench.add_argument("--impl-only", action="store_true",
                       help="with --lstm-impl: time only the implementation and its comparators, not the kit's own "
                            "benchmarks")
    rep = sub.add_parser("report", help="re-render the HTML report from the JSON files in DIR")
    rep.add_argument("--out", default="report", type=Path, help="report folder (default: report/)")
    return p


def _workers(value: str) -> str:
    if value in ("auto", "logical") or (value.isdigit() and int(value) >= 0):
        return value
    raise argparse.ArgumentTypeError(f"{value!r}: a number of workers, or auto")


def _check_cell(spec: str | None, device: str) -> str | None:
    """One clear message if the cell cannot be loaded or breaks the contract, else None."""
    import torch

    from lstm_claims.claims.cell_under_test import DEFAULT_IMPL, CellContractError, CellUnderTest, check_contract

    spec = spec or os.environ.get("CLAIMS_LSTM_IMPL") or DEFAULT_IMPL
    try:
        cut = CellUnderTest.load(spec)
        for dev in (["cpu", "cuda"] if device == "all" else [device]):
            if dev == "cuda" and not torch.cuda.is_available():
                continue
            for dtype in (torch.float64, torch.float32):
                check_contract(cut, dev, dtype)
    except CellContractError as exc:
        return f"the cell under test breaks the LSTMCell contract: {exc}"
    return None


def cmd_run(args) -> int:
    if not (SUITE / "test_claims.py").is_file():
        return _error(f"the claim suite is not at {SUITE}: the installation of lstm-claims is incomplete")
    parallel = args.numprocesses not in (None, "0")
    if parallel and importlib.util.find_spec("xdist") is None:
        return _error(f"-n {args.numprocesses} needs pytest-xdist, which is not installed "
                      f"(python3 -m pip install pytest-xdist), or run without -n")
    problem = _check_cell(args.lstm_impl, args.device)
    if problem:
        return _error(problem)
    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / "claims.json"
    if json_path.exists():
        json_path.unlink()
    # The suite's own pytest.ini and rootdir: the caller's pytest configuration and conftest files play no part.
    cmd = [sys.executable, "-m", "pytest", str(SUITE), "-c", str(SUITE / "pytest.ini"), f"--rootdir={SUITE}",
           "-q", "--no-header", "-p", "no:cacheprovider", "--claims-progress",
           f"--claims-json={json_path}", f"--claims-profile={args.profile}", f"--claims-device={args.device}",
           "-o", "console_output_style=count"]
    if not _plugin_registered():
        # Run from a checkout that is not installed (PYTHONPATH): the pytest11 entry point is absent.
        cmd += ["-p", "lstm_claims.plugin"]
    if args.seed is not None:
        cmd.append(f"--claims-seed={args.seed}")
    if args.select:
        cmd.append(f"--claims-select={args.select}")
    if args.lstm_impl:
        cmd.append(f"--lstm-impl={args.lstm_impl}")
    if args.claims:
        cmd.append(f"--claims-ids={args.claims}")
    if args.xfails_file:
        cmd.append(f"--xfails-file={args.xfails_file}")
    if args.fail_fast:
        cmd.append("--claims-fail-fast")
    if parallel:
        # pytest-benchmark (if installed) warns on every worker that xdist disables it: the suite has no benchmarks.
        cmd += ["-p", "xdist", "-n", args.numprocesses, "-p", "no:benchmark"]
    workers = f", {args.numprocesses} workers" if parallel else ""
    print(f"lstm-claims: running the claim suite ({args.profile} profile{workers}) ...", flush=True)
    rc = subprocess.call(cmd, cwd=args.out)
    if rc not in (0, 1) or not json_path.exists():
        return _error(f"the claim suite did not run to the end (pytest exit status {rc}); see the messages above")
    from lstm_claims.report import render

    page = render(args.out)
    print(f"lstm-claims: report written to {json_path} and {page}")
    return EXIT_OK if rc == 0 else EXIT_FAILED


def cmd_bench(args) -> int:
    from lstm_claims.bench import run_benchmarks
    from lstm_claims.report import render

    if args.impl_only and not args.lstm_impl:
        return _error("--impl-only needs --lstm-impl=MODULE:ATTR (the implementation to time)")
    if args.lstm_impl:
        # The same contract check as `run` (float64 and float32 on CPU, and CUDA where there is one):
        # one message naming what is wrong, before minutes of benchmarks.
        problem = _check_cell(args.lstm_impl, "all")
        if problem:
            return _error(problem)
    args.out.mkdir(parents=True, exist_ok=True)
    rc = run_benchmarks(args.out, smoke=args.smoke, lstm_impl=args.lstm_impl, impl_only=args.impl_only)
    if (args.out / "bench.json").exists():
        print(f"lstm-claims: benchmarks written to {args.out / 'bench.json'}; report {render(args.out)}")
    return EXIT_OK if rc == 0 else EXIT_FAILED


def cmd_report(args) -> int:
    from lstm_claims.report import render

    if not (args.out / "claims.json").exists() and not (args.out / "bench.json").exists():
        return _error(f"{args.out} has neither claims.json nor bench.json: run `lstm-claims run` first")
    print(render(args.out))
    return EXIT_OK


def _from_the_callers_directory(args) -> None:
    """Paths and --lstm-impl modules mean what they mean in the directory the command was run from.

    The suite runs in a pytest subprocess started in the kit's root (for its configuration), so
    relative paths are made absolute here, and the caller's directory goes first on the import
    path of this process and the subprocess, as `python -m` would put it: `--lstm-impl
    mycell:MyCell` finds mycell.py in the current directory.
    """
    args.out = args.out.resolve()
    if getattr(args, "xfails_file", None):
        args.xfails_file = str(Path(args.xfails_file).resolve())
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    os.environ["PYTHONPATH"] = os.pathsep.join([cwd, *filter(None, [os.environ.get("PYTHONPATH")])])


def _plugin_registered() -> bool:
    """Whether pytest will load the kit's plugin by itself (its pytest11 entry point is installed, or
    PYTEST_PLUGINS names it)."""
    from importlib.metadata import entry_points

    if "lstm_claims.plugin" in os.environ.get("PYTEST_PLUGINS", "").split(","):
        return True
    return any(ep.value == "lstm_claims.plugin" for ep in entry_points(group="pytest11"))


def _missing_requirement() -> str | None:
    """The kit's runtime requirement that is not importable here, named with its install command, or None."""
    import importlib.util

    for module in ("torch", "hypothesis", "sympy"):
        if importlib.util.find_spec(module) is None:
            return (f"{module} is not installed in this Python ({sys.executable}); lstm-claims needs it: "
                    f"python3 -m pip install {module} (or reinstall lstm-claims with its dependencies)")
    return None


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    _from_the_callers_directory(args)
    if args.command in ("run", "bench"):
        missing = _missing_requirement()
        if missing:
            return _error(missing)
    return {"run": cmd_run, "bench": cmd_bench, "report": cmd_report}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
