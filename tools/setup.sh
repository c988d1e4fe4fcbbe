#!/usr/bin/env bash
# Set up this checkout: .venv with the pinned versions in requirements.lock, tflite-deploy in editable
# mode, and onnx2tf (ONNX sources). That is all the commands need: `bench --device` drives the adb 36
# that adbutils ships, and nothing is installed system-wide. Safe to run again (it only adds).
#
#   bash tools/setup.sh                    the commands
#   bash tools/setup.sh --with postgres    also an optional part: postgres (a PostgreSQL results store),
#                                          torch (export PyTorch models to ONNX); comma-separated
#   bash tools/setup.sh --tests            everything the test suite needs (see tools/setup-tests.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)
has() { .venv/bin/python -c "import importlib.metadata as m, sys; m.version(sys.argv[1])" "$1" 2>/dev/null; }

extras=""
while [ $# -gt 0 ]; do
    case "$1" in
        --tests) exec bash tools/setup-tests.sh ;;
        --with) extras="${2:?--with takes a list such as postgres,torch}"; shift 2 ;;
        --with=*) extras="${1#--with=}"; shift ;;
        *) echo "tools/setup.sh: unknown option $1 (use --with postgres,torch or --tests)" >&2; exit 2 ;;
    esac
done
for extra in ${extras//,/ }; do
    case "$extra" in
        postgres|torch) ;;
        *) echo "tools/setup.sh: unknown part $extra (postgres or torch)" >&2; exit 2 ;;
    esac
done

[ -x .venv/bin/python ] || "$PY" -m venv .venv
"${PIP[@]}" -r requirements.lock
"${PIP[@]}" --no-deps --no-build-isolation -e .
# onnx2tf (ONNX sources) pins TF 2.19 / numpy 1.26 / ai-edge-litert 2.1 and more exactly (see the comment at the
# top of requirements.lock); installed without its pins it converts correctly on our set (tests/test_onnx_source.py).
has onnx2tf || "${PIP[@]}" --no-deps onnx2tf==1.29.24

# the optional parts (pyproject's extras), at the versions pinned for the tests; the product's stay as locked
PINS=(-c requirements.lock -c requirements-tests.lock)
for extra in ${extras//,/ }; do
    case "$extra" in
        postgres)
            "${PIP[@]}" "${PINS[@]}" "psycopg[binary]" ;;
        torch)  # only the CPU build (a 191 MB wheel; plain torch from PyPI brings ~2.2 GB of CUDA packages)
            has torch || "${PIP[@]}" "${PINS[@]}" "torch==2.13.0+cpu" \
                || echo "warning: torch 2.13.0+cpu is not available here (the PyTorch export test skips)" >&2 ;;
    esac
done
