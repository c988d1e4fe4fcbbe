#!/usr/bin/env bash
# Set up a fresh machine: .venv with the pinned versions in requirements.lock, tflite-deploy in
# editable mode, and the adb client the device tests drive. Safe to run again (it only adds).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.lock
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
# Debian's adb (platform-tools 29) for the device tests; adbutils brings adb 36 by itself.
if ! command -v adb >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq adb >/dev/null) || echo "warning: could not install adb" >&2
fi
# Results store tests: Debian's PostgreSQL 15 (a throw-away cluster per test session) and the
# headless chromium the report test drives through Playwright (its own browser download cannot work here).
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    need=""
    [ -x /usr/lib/postgresql/15/bin/initdb ] || need="$need postgresql"
    [ -x /usr/bin/chromium ] || need="$need chromium"
    if [ -n "$need" ]; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null) \
            || echo "warning: could not install$need" >&2
    fi
fi
# onnx2tf (ONNX sources) pins TF 2.19 / numpy 1.26 / ai-edge-litert 2.1 and more exactly (see the comment at the
# top of requirements.lock); installed without its pins it converts correctly on our set (tests/test_onnx_source.py).
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps onnx2tf==1.29.24
# PyTorch, for the torch.onnx.export path and its test: only the CPU build (a 191 MB wheel; plain torch from
# PyPI would bring ~2.2 GB of CUDA packages). Where no +cpu wheel is reachable, that one test is skipped.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    .venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0+cpu" \
        || echo "warning: torch 2.13.0+cpu not available here; the PyTorch export test will be skipped" >&2
fi
