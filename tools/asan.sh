#!/usr/bin/env bash
# ASan + UBSan: build gilx._core with -fsanitize=address,undefined, preload
# the sanitizer runtimes into an ordinary (uninstrumented) CPython, and run
# the whole test suite.  Passes only with zero sanitizer reports, from the
# pytest process and from every child process the tests start.
#
#   bash tools/asan.sh [pytest args...]
#
# Python: $PYTHON (default python3).  Compiler: $CC (default gcc).
#
# Settings, and why:
#   PYTHONMALLOC=malloc    pymalloc hands out memory from its own arenas, so
#                          ASan could not see overflows of Python objects.
#   detect_leaks=0         LeakSanitizer would report what CPython itself
#                          deliberately never frees at exit (interned
#                          strings, static types, ...): noise, not gilx.
#                          Leaks of gilx are checked by tests/test_stability.py
#                          (reference counts, memory over 100,000 calls).
#   halt_on_error / -fno-sanitize-recover=all: the first report ends the
#                          process, so no report can go unnoticed.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
CC=${CC:-gcc}
asan_rt=$("$CC" -print-file-name=libasan.so)
ubsan_rt=$("$CC" -print-file-name=libubsan.so)
for rt in "$asan_rt" "$ubsan_rt"; do
    if [[ ! -e $rt ]]; then
        echo "asan: FAILED: sanitizer runtime not found ($rt)" >&2
        exit 1
    fi
done

work=$(mktemp -d /tmp/gilx-asan.XXXXXX)
trap 'rm -rf "$work"' EXIT
# Build from a copy: an in-tree build/ directory could hold objects compiled
# without the sanitizers, which setuptools would happily reuse.
mkdir "$work/src"
cp -r csrc src setup.py pyproject.toml README.md LICENSE "$work/src/"

"$PY" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --upgrade pip
flags="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1"
CC=$CC CFLAGS="$flags" LDFLAGS="-fsanitize=address,undefined" GILX_STRICT=1 \
    "$work/venv/bin/python" -m pip install --quiet --no-cache-dir "$work/src[test]"

so=$("$work/venv/bin/python" -c 'import gilx._core as c; print(c.__file__)' 2>/dev/null ||
     LD_PRELOAD="$asan_rt $ubsan_rt" ASAN_OPTIONS=detect_leaks=0 PYTHONMALLOC=malloc \
     "$work/venv/bin/python" -c 'import gilx._core as c; print(c.__file__)')
# The symbol table is read once into a variable: with pipefail, `nm | grep -q`
# fails whenever grep stops reading early and nm gets SIGPIPE.
symbols=$(nm -D "$so")
if [[ $symbols != *__asan_report* || $symbols != *__ubsan_handle* ]]; then
    echo "asan: FAILED: $so is not instrumented" >&2
    exit 1
fi

mkdir "$work/reports"
status=0
# GILX_TEST_TIMEOUT_SCALE: the suite's subprocess time limits (tests/test_docs.py)
# are sized for an ordinary build; here every allocation is checked.
GILX_TEST_TIMEOUT_SCALE=4 \
LD_PRELOAD="$asan_rt $ubsan_rt" \
PYTHONMALLOC=malloc \
ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0:log_path=$work/reports/asan" \
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$work/reports/ubsan" \
    "$work/venv/bin/python" -m pytest -q -p no:cacheprovider "$@" || status=$?

reports=$(find "$work/reports" -type f | wc -l)
if [[ $reports -gt 0 ]]; then
    for f in "$work/reports"/*; do
        echo "--- $f"; cat "$f"
    done
fi
echo "asan: extension built with $CC $flags; $reports sanitizer report(s); pytest exit $status"
if [[ $reports -gt 0 || $status -ne 0 ]]; then
    echo "asan: FAILED"
    exit 1
fi
echo "asan: passed (ASan + UBSan, zero reports; LeakSanitizer off, see the script)"
