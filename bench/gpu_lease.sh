#!/usr/bin/env bash
# The one prepared GPU run (issue #21; docs/gpu-torch-cuda.md says how to call it).
#
#   bash bench/gpu_lease.sh pack                  here: wheels for the GPU machine's Python 3.12 into .whl/
#   bash bench/gpu_lease.sh run --out "$OUT"      there: install the carried wheels into /tmp/site, then
#                                                 python3 -m lredit.bench.gpu_lease --out "$OUT"
#   bash bench/gpu_lease.sh run --dry-run --out D here: the same steps on the CPU at tiny size, on the
#                                                 local install (no wheels needed)
#
# The GPU machine's image has torch, CuPy, cuda-bindings, transformers, onnxruntime (CPU) and pytest
# (device KINDS.md) but no diffusers, importlib-metadata (and its lazy-importer) or jsonschema: those travel as wheels, at
# the versions this checkout's venv runs, with lredit's own wheel.
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELS=.whl
CARRIED=(diffusers importlib-metadata lazy-importer jsonschema jsonschema-specifications referencing rpds-py)
MAX_WHEEL_BYTES=$((40 * 1024 * 1024))  # of the 64 MiB a call carries; the working tree needs the rest
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64)

pack() {
    local python=${PYTHON:-python3} specs=()
    rm -rf "$WHEELS" && mkdir -p "$WHEELS"
    "$python" -m pip wheel -q --no-deps --no-build-isolation -w "$WHEELS" .
    for name in "${CARRIED[@]}"; do
        specs+=("$name==$("$python" -c 'import sys, importlib.metadata as m; print(m.version(sys.argv[1]))' "$name")")
    done
    local platform_args=()
    for p in "${PLATFORMS[@]}"; do platform_args+=(--platform "$p"); done
    # Pure-Python wheels match any platform; rpds-py needs the cp312 manylinux build.
    "$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        "${platform_args[@]}" -d "$WHEELS" "${specs[@]}"
    local bytes
    bytes=$(du -cb "$WHEELS"/*.whl | tail -1 | cut -f1)
    ls -l "$WHEELS"
    if [ "$bytes" -gt "$MAX_WHEEL_BYTES" ]; then
        echo "gpu_lease: the wheels take $bytes bytes, over the $MAX_WHEEL_BYTES allowed" >&2
        exit 1
    fi
    echo "gpu_lease: $(ls "$WHEELS"/*.whl | wc -l) wheels, $bytes bytes in $WHEELS/ (carry it: carry=[\"$WHEELS\"])"
}

run() {
    local dry=0
    for arg in "$@"; do [ "$arg" = --dry-run ] && dry=1; done
    if [ "$dry" = 0 ]; then
        if ! ls "$WHEELS"/lredit-*.whl >/dev/null 2>&1; then
            echo "gpu_lease: no lredit wheel in $WHEELS/: run 'bash bench/gpu_lease.sh pack' here, and carry $WHEELS" >&2
            exit 2
        fi
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl
        export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
    fi
    exec "${PYTHON:-python3}" -m lredit.bench.gpu_lease "$@"
}

case "${1:-}" in
    pack) shift; pack "$@" ;;
    run) shift; run "$@" ;;
    *) echo "usage: bash bench/gpu_lease.sh pack | run [--dry-run] --out DIR [--budget-s S]" >&2; exit 2 ;;
esac
