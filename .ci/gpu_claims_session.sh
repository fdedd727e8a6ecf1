#!/usr/bin/env bash
# The claim steps of .ci/gpu, with the checkout on the import path and the plugin named (no pip install there).
set -u
out="${OUT:-/tmp/gpu-out}"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTEST_PLUGINS=lstm_claims.plugin
for spec in lstm_claims.reference.reference_cell:ReferenceLSTMCell torch.nn:LSTMCell torch.nn:LSTM; do
  name="${spec##*:}"
  start=$(date +%s.%N)
  timeout "${STEP_S:-130}" python3 -m lstm_claims.cli run --device cuda --lstm-impl="$spec" --out "$out/$name" > "$out/$name.log" 2>&1
  rc=$?
  echo "$spec: exit $rc in $(python3 -c "print(round($(date +%s.%N) - $start, 1))") s"
  grep -E "^ (L|G|V|R)[0-9] |passed|failed" "$out/$name.log" | tail -22 | cut -c1-160
  rm -f "$out/$name/index.html"
done
