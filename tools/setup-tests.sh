#!/usr/bin/env bash
# Set up this checkout for the test suite (the README's test command and .ci/run): tools/setup.sh with
# its optional parts (postgres, torch), the test tools pinned in requirements-tests.lock (pytest,
# playwright, import-linter, mutmut), and, as root on Debian, the servers and programs the tests drive:
#   - adb (Debian's platform-tools 29): the device tests run both it and adbutils' adb 36, which differ;
#   - postgresql (15): a throw-away cluster per test session for the PostgreSQL results-store tests;
#   - chromium: the report test opens the HTML report in it through Playwright (whose own browser
#     download cannot work here).
# Safe to run again (it only adds).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh --with postgres,torch
.venv/bin/python -m pip install -q --disable-pip-version-check -c requirements.lock -r requirements-tests.lock

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    need=""
    command -v adb >/dev/null 2>&1 || need="$need adb"
    [ -x /usr/lib/postgresql/15/bin/initdb ] || need="$need postgresql"
    [ -x /usr/bin/chromium ] || need="$need chromium"
    if [ -n "$need" ]; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null) \
            || echo "warning: could not install$need" >&2
    fi
else
    echo "note: not root (or no apt-get): install adb, postgresql and chromium yourself, or their tests skip" >&2
fi
