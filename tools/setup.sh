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
