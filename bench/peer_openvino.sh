#!/usr/bin/env bash
# OpenVINO runtime against ONNX Runtime on a bundle's own ONNX graphs, in a venv of their own
# (openvino, onnxruntime, numpy, and lredit without its dependencies for the manifest reader):
# bench/openvino_graphs.py.
#
#   bench/peer_openvino.sh BUNDLE --graphs unet,vae_decoder,vae_encoder --runs 10 --json ov.json
#
# LREDIT_OV_VENV: where the venv lives (default ~/.cache/lredit/peer-openvino-venv).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
venv="${LREDIT_OV_VENV:-$HOME/.cache/lredit/peer-openvino-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q openvino onnxruntime numpy
  "$venv/bin/pip" install -q --no-deps "$repo"
fi
exec "$venv/bin/python" "$repo/bench/openvino_graphs.py" "$@"
