#!/usr/bin/env bash
# The cuDNN accuracy probe of session 4 (.ci/gpu_probe.py) and the reference cell's G3 on CUDA. Run: bash .ci/gpu_probe_session.sh
set -u
export PYTHONPATH="$PWD" PYTEST_PLUGINS=lstm_claims.plugin
python3 .ci/gpu_probe.py 2>&1 | grep -v Warning
timeout 100 python3 -m lstm_claims.cli run --device cuda --claims=G3 --out "${OUT:-/tmp}/g3" > /tmp/g3.log 2>&1
echo "G3 reference cell cuda: exit $?"
grep -E "^E  |G3 " /tmp/g3.log | head -6 | cut -c1-900
