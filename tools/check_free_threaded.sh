#!/usr/bin/env bash
# Compile csrc/ as if for a free-threaded (3.13t) CPython: -DPy_GIL_DISABLED=1
# against the 3.13+ headers, syntax only.  No free-threaded interpreter is
# needed; this proves the `#ifdef Py_GIL_DISABLED` paths at least compile.
# Headers: $GILX_FT_INCLUDE, else pyenv's newest 3.13+, else python3.13-config.
set -euo pipefail
cd "$(dirname "$0")/.."

find_headers() {
    if [[ -n ${GILX_FT_INCLUDE:-} ]]; then
        echo "$GILX_FT_INCLUDE"; return
    fi
    if command -v pyenv >/dev/null 2>&1; then
        local root dir
        root=$(pyenv root)
        for dir in $(ls -d "$root"/versions/3.1[3-9]*/include/python3.1[3-9] 2>/dev/null | sort -rV); do
            [[ -f $dir/Python.h ]] && { echo "$dir"; return; }
        done
    fi
    for cfg in python3.14-config python3.13-config; do
        if command -v "$cfg" >/dev/null 2>&1; then
            "$cfg" --includes | sed 's/-I//; s/ .*//'; return
        fi
    done
}

inc=$(find_headers || true)
if [[ -z $inc || ! -f $inc/Python.h ]]; then
    echo "check_free_threaded: SKIPPED: no CPython 3.13+ headers found (set GILX_FT_INCLUDE)"
    exit 0
fi
cc=${CC:-cc}
for src in csrc/*/*.c; do
    "$cc" -std=c11 -Wall -Wextra -Werror -fsyntax-only -DPy_GIL_DISABLED=1 \
        -I"$inc" -Icsrc/reference -Icsrc/harness "$src"
done
echo "check_free_threaded: csrc/*/*.c compile with Py_GIL_DISABLED=1 against $inc"
