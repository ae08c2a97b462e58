#!/usr/bin/env bash
# ThreadSanitizer: build gilx._core with -fsanitize=thread, preload libtsan
# into Debian's own python3.11 (pyenv's CPythons crash at start-up under
# TSan), and run tests/test_tsan.py: threads hammering AtomicCounter,
# LockedCounter, count_gil, count_nogil, count_auto, stream_sum, race() and
# a cancel must give zero reports; threads on UnsafeCounter must give data
# race reports whose accesses are all in plain_increments (csrc/counters.c).
#
#   bash tools/tsan.sh
#
# Installs python3.11, python3.11-dev and python3.11-venv with apt when
# missing (needs root).  $TSAN_PYTHON overrides the interpreter.  The report
# of the intentional race is saved to $GILX_TSAN_REPORT (default
# tsan-report.txt in a temporary directory, printed at the end).
#
# Only the extension is instrumented, so TSan sees only gilx's own memory
# accesses, and the pthread calls of the whole process (the GIL is a pthread
# mutex and condition variable: TSan sees it as the lock it is).  No
# suppressions are used.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${TSAN_PYTHON:-/usr/bin/python3.11}
if [[ ! -x $PY || ! -f /usr/include/python3.11/Python.h ]] || ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then
    if [[ -z ${TSAN_PYTHON:-} ]] && command -v apt-get >/dev/null 2>&1; then
        echo "tsan: installing python3.11 python3.11-dev python3.11-venv with apt"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3.11 python3.11-dev python3.11-venv >/dev/null
    fi
fi
if [[ ! -x $PY ]]; then
    echo "tsan: FAILED: no $PY" >&2
    exit 1
fi
CC=${CC:-gcc}
tsan_rt=$("$CC" -print-file-name=libtsan.so)
if [[ ! -e $tsan_rt ]]; then
    echo "tsan: FAILED: no TSan runtime ($tsan_rt); apt-get install libtsan2" >&2
    exit 1
fi

work=$(mktemp -d /tmp/gilx-tsan.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/src"
cp -r csrc src setup.py pyproject.toml README.md LICENSE "$work/src/"
"$PY" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --upgrade pip
flags="-fsanitize=thread -g -O1 -fno-omit-frame-pointer"
CC=$CC CFLAGS="$flags" LDFLAGS="-fsanitize=thread" GILX_STRICT=1 \
    "$work/venv/bin/python" -m pip install --quiet --no-cache-dir "$work/src[test]"

report=${GILX_TSAN_REPORT:-$work/tsan-report.txt}
status=0
LD_PRELOAD=$tsan_rt GILX_REQUIRE_TSAN=1 GILX_TSAN_REPORT=$report \
    "$work/venv/bin/python" -m pytest -q -p no:cacheprovider tests/test_tsan.py "$@" || status=$?
if [[ $status -ne 0 ]]; then
    echo "tsan: FAILED (pytest exit $status)"
    exit 1
fi
echo
echo "tsan: the intentional race, as ThreadSanitizer reports it:"
cat "$report"
echo "tsan: passed ($("$PY" --version), extension built with $CC $flags)"
