#!/usr/bin/env bash
# ThreadSanitizer on a free-threaded CPython, in one command:
#
#   bash tools/tsan_ft.sh
#
# Builds (or reuses) CPython 3.13 with --disable-gil --with-thread-sanitizer
# (tools/build_cpython.sh tsan-ft, ~10 min the first time on 2 cores), then
# runs tools/tsan.sh with it: gilx built with -fsanitize=thread, the safe
# paths (counts on threads, AtomicCounter, LockedCounter's ticket lock,
# race atomic/locked, cancel) must give no report at all, the UnsafeCounter
# race must be reported in gilx_plain_increments.  CPython's own
# Tools/tsan/suppressions_free_threading.txt silences the interpreter's known
# races.  A build that fails fails this script.
set -euo pipefail
cd "$(dirname "$0")/.."

python=$(bash tools/build_cpython.sh tsan-ft)
suppressions=$(dirname "$(dirname "$python")")/tsan-suppressions.txt
TSAN_PYTHON=$python GILX_TSAN_SUPPRESSIONS=$suppressions bash tools/tsan.sh "$@"
