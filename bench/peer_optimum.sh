#!/usr/bin/env bash
# The optimum-onnx peer for lr-bench, in its own venv (optimum-onnx pins transformers < 4.58;
# ours are newer). Writes an lr-bench record that `lr-bench --peer FILE` sets in its table.
#
#   bench/peer_optimum.sh --models tiny --anchors 9 --steps 25 --runs 5 --warmup 1 --out peer.json
#
# LREDIT_PYTHON: the python of lredit's own venv (default: python on PATH), which writes the
# models as a diffusers folder; LREDIT_PEER_VENV: where the peer venv lives.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
ours="${LREDIT_PYTHON:-python}"
venv="${LREDIT_PEER_VENV:-$HOME/.cache/lredit/peer-optimum-venv}"
work="${LREDIT_PEER_WORK:-$HOME/.cache/lredit/peer-optimum}"

models=tiny
scheduler=model
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --models) models="$2"; args+=("$1" "$2"); shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  # torch 2.13.0 is the CPU build on this machine's disk; lredit's base install is torch-free.
  "$venv/bin/pip" install -q torch==2.13.0 'optimum-onnx[onnxruntime]==0.1.0' diffusers jsonschema
  "$venv/bin/pip" install -q --no-deps -e "$repo"
  "$venv/bin/pip" install -q tokenizers tqdm
fi

slug="$(printf %s "$models" | tr -c "A-Za-z0-9_.-" "_")"
pipeline_dir="$work/$slug-pipeline"
if [ ! -f "$pipeline_dir/model_index.json" ]; then
  "$ours" -m lredit.bench.peer_models --models "$models" --scheduler "$scheduler" --out "$pipeline_dir"
fi
"$venv/bin/python" "$repo/bench/peer_optimum.py" --pipeline-dir "$pipeline_dir" --onnx-dir "$work/$slug-onnx" "${args[@]}"
