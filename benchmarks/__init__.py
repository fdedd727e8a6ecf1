"""Benchmarks of the kit (pytest-benchmark), kept apart from the @given tests.

Files are named bench_*.py so that neither the default `pytest` run (testpaths = tests) nor
pytest's default python_files pattern picks them up; benchmarks/conftest.py collects them
when this folder is named on the command line:

    python -m pytest benchmarks -p no:cacheprovider            # timed run
    python -m pytest benchmarks -p no:cacheprovider --benchmark-disable   # smoke: each body once

`lstm_claims.bench.run_benchmarks` runs them and writes bench.json with the ratios.
"""
