#!/usr/bin/env bash
# One device session (the device tool's machine has torch with CUDA but not the kit): what the machine
# has, then .ci/gpu with the checkout on the import path and the kit's pytest plugin named (its entry
# point exists only when the kit is installed); logs to $OUT. Run: bash .ci/gpu_session.sh
set -u
out="${OUT:-/tmp/gpu-out}"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if ! python3 -c "import importlib.metadata as m; m.distribution('lstm-claims')" 2>/dev/null; then
  export PYTEST_PLUGINS=lstm_claims.plugin
fi
python3 - <<'PY' 2>&1 | tee "$out/env.txt"
import importlib
for m in ("torch", "hypothesis", "sympy", "numpy", "pytest", "pytest_benchmark", "matplotlib", "xdist"):
    try:
        mod = importlib.import_module(m); print(m, getattr(mod, "__version__", "?"))
    except Exception as e:
        print(m, "MISSING", e)
import torch; print("cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
PY
GPU_STEP_LIMIT_S="${GPU_STEP_LIMIT_S:-110}" bash .ci/gpu "$out/report-gpu" 2>&1 | tee "$out/ci-gpu.txt"
for d in reference torch-LSTMCell torch-LSTM; do
  f="$out/report-gpu/$d/claims.json"
  [ -f "$f" ] && python3 -c "
import json,sys; d=json.load(open('$f'))
print('$d', {k: v['verdict'] for k, v in d['claims'].items()})" 2>&1 | tee -a "$out/verdicts.txt"
done
rm -f "$out"/report-gpu/*/index.html
