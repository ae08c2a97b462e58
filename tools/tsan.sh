#!/usr/bin/env bash
# ThreadSanitizer: build gilx._core with -fsanitize=thread and run
# tests/test_tsan.py: threads hammering AtomicCounter, LockedCounter,
# count_gil, count_nogil, count_auto, stream_sum, race() and a cancel must
# give zero reports; threads on UnsafeCounter must give data race reports
# whose accesses are all in gilx_plain_increments (csrc/demo/race.c).
#
#   bash tools/tsan.sh        # GIL build: Debian's python3.11, libtsan preloaded
#   bash tools/tsan_ft.sh     # free-threaded: a CPython built with TSan (calls this)
#
# By default the interpreter is Debian's own python3.11 (pyenv's CPythons
# crash at start-up under TSan); python3.11, python3.11-dev and
# python3.11-venv are installed with apt when missing (needs root).  Only the
# extension is instrumented there, so TSan sees gilx's own memory accesses
# and the pthread calls of the whole process (the GIL is a pthread mutex and
# condition variable: TSan sees it as the lock it is); no suppressions.
#
# $TSAN_PYTHON names another interpreter.  One built with
# --with-thread-sanitizer (tools/build_cpython.sh tsan-ft) already carries
# the TSan runtime, so nothing is preloaded; $GILX_TSAN_SUPPRESSIONS then
# names CPython's own suppressions file for its known races.  The report of
# the intentional race is saved to $GILX_TSAN_REPORT (default
# tsan-report.txt in a temporary directory, printed at the end).
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
preload=
if "$PY" -c 'import sysconfig, sys; sys.exit("--with-thread-sanitizer" not in (sysconfig.get_config_var("CONFIG_ARGS") or ""))'; then
    echo "tsan: $PY is built with ThreadSanitizer: nothing to preload"
else
    preload=$("$CC" -print-file-name=libtsan.so)
    if [[ ! -e $preload ]]; then
        echo "tsan: FAILED: no TSan runtime ($preload); apt-get install libtsan2" >&2
        exit 1
    fi
fi
tsan_options=${TSAN_OPTIONS:-}
if [[ -n ${GILX_TSAN_SUPPRESSIONS:-} ]]; then
    [[ -f $GILX_TSAN_SUPPRESSIONS ]] || { echo "tsan: FAILED: no $GILX_TSAN_SUPPRESSIONS" >&2; exit 1; }
    tsan_options="$tsan_options suppressions=$GILX_TSAN_SUPPRESSIONS"
fi

work=$(mktemp -d /tmp/gilx-tsan.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/src"
cp -r csrc src setup.py pyproject.toml README.md LICENSE "$work/src/"
"$PY" -m venv "$work/venv"
# Only what tests/test_tsan.py needs (gilx imports none of its dependencies):
# pip is slow under an instrumented interpreter (a TSan-built CPython runs pip
# itself under ThreadSanitizer), and --no-compile spares it byte-compiling what
# it installs: the modules compile on first import instead.
flags="-fsanitize=thread -g -O1 -fno-omit-frame-pointer"
TSAN_OPTIONS=$tsan_options "$work/venv/bin/python" -m pip install --quiet --no-compile "pytest>=7"
CC=$CC CFLAGS="$flags" LDFLAGS="-fsanitize=thread" GILX_STRICT=1 TSAN_OPTIONS=$tsan_options \
    "$work/venv/bin/python" -m pip install --quiet --no-compile --no-cache-dir --no-deps "$work/src"

report=${GILX_TSAN_REPORT:-$work/tsan-report.txt}
status=0
LD_PRELOAD=$preload TSAN_OPTIONS=$tsan_options GILX_REQUIRE_TSAN=1 GILX_TSAN_REPORT=$report \
    "$work/venv/bin/python" -m pytest -q -p no:cacheprovider tests/test_tsan.py "$@" || status=$?
if [[ $status -ne 0 ]]; then
    echo "tsan: FAILED (pytest exit $status)"
    exit 1
fi
echo
echo "tsan: the intentional race, as ThreadSanitizer reports it:"
cat "$report"
echo "tsan: passed ($("$PY" --version), extension built with $CC $flags)"
