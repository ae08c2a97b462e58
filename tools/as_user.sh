#!/usr/bin/env bash
# The instrument as an ordinary user: CI runs as root, where the heartbeat gets
# real-time priority and /proc shows everything; almost no user has either.
# This script installs gilx into a fresh virtual environment that an
# unprivileged account can read, and runs, as that account (no root, no
# capabilities, no real-time priority), the tests a user's verdicts stand on:
# the instrument's accuracy, gilx.testing, the pytest plugin, probe and the
# judgement, and `gilx watch`.  GILX_EXPECT_ORDINARY_USER=1 makes the suite
# check that it really is unprivileged (tests/test_instrument.py).
#
#   bash tools/as_user.sh [PYTEST_ARGS...]     # as root; default: the files below
#
# The interpreter is Debian's python3.11 (installed with apt when missing, as
# tools/tsan.sh does): pyenv's live under /root, which another account cannot
# enter.  $GILX_USER names the account (created when missing, default
# gilx-user); $AS_USER_PYTHON another interpreter it can run.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
    echo "as_user: run this as root (it creates the account and drops to it)" >&2
    exit 1
fi
PY=${AS_USER_PYTHON:-/usr/bin/python3.11}
if [[ ! -x $PY || ! -f /usr/include/python3.11/Python.h ]] || ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then
    if [[ -z ${AS_USER_PYTHON:-} ]] && command -v apt-get >/dev/null 2>&1; then
        echo "as_user: installing python3.11 python3.11-dev python3.11-venv with apt"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3.11 python3.11-dev python3.11-venv >/dev/null
    fi
fi
[[ -x $PY ]] || { echo "as_user: FAILED: no $PY" >&2; exit 1; }

USER_NAME=${GILX_USER:-gilx-user}
id "$USER_NAME" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$USER_NAME"

work=$(mktemp -d /tmp/gilx-as-user.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/src" "$work/home"
cp -r csrc src tests examples setup.py pyproject.toml README.md LICENSE "$work/src/"
"$PY" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --upgrade pip
GILX_STRICT=1 "$work/venv/bin/python" -m pip install --quiet "$work/src[test]"
rm -rf "$work/src/src"   # the tests import the installed package, not the source tree
chmod -R a+rX "$work"
chown -R "$USER_NAME" "$work/home"

if [[ $# -eq 0 ]]; then
    set -- tests/test_instrument.py tests/test_testing.py tests/test_pytest_plugin.py \
        tests/test_probe.py tests/test_judged.py tests/test_watch_cli.py tests/test_blame.py
fi
echo "as_user: $(runuser -u "$USER_NAME" -- id) runs: pytest $*"
# RLIMIT_RTPRIO as the account has it: 0 on a default Linux, so no SCHED_FIFO.
runuser -u "$USER_NAME" -- bash -c 'echo "as_user: RLIMIT_RTPRIO $(ulimit -r), nice $(nice)"'
cd "$work/src"
runuser -u "$USER_NAME" -- env HOME="$work/home" GILX_EXPECT_ORDINARY_USER=1 \
    "$work/venv/bin/python" -m pytest -p no:cacheprovider -q "$@"
