#!/usr/bin/env bash
# The C extension compiles and links warning-free (-Wall -Wextra -Werror)
# with gcc and with clang, against the headers of every CPython >= 3.10 on
# this machine (pyenv's and the system's), then once more as a real pip
# build with each compiler (GILX_STRICT=1, the flags of setup.py).
#
#   bash tools/compilers.sh
#
# Installs clang with apt when it is missing (needs root).  Fails if either
# compiler is missing or if no headers are found.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v clang >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    echo "compilers: installing clang with apt"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang >/dev/null
fi
for cc in gcc clang; do
    if ! command -v $cc >/dev/null 2>&1; then
        echo "compilers: FAILED: $cc not found" >&2
        exit 1
    fi
done

includes=()
if command -v pyenv >/dev/null 2>&1; then
    for dir in "$(pyenv root)"/versions/3.1[0-9]*/include/python3.1[0-9]*; do
        [[ -f $dir/Python.h ]] && includes+=("$dir")
    done
fi
for dir in /usr/include/python3.1[0-9]*; do
    [[ -f $dir/Python.h ]] && includes+=("$dir")
done
if [[ ${#includes[@]} -eq 0 ]]; then
    echo "compilers: FAILED: no CPython >= 3.10 headers found" >&2
    exit 1
fi

work=$(mktemp -d /tmp/gilx-cc.XXXXXX)
trap 'rm -rf "$work"' EXIT
builds=0
for cc in gcc clang; do
    for inc in "${includes[@]}"; do
        for opt in -O0 -O2; do
            "$cc" -std=c11 -Wall -Wextra -Werror $opt -fPIC -shared \
                -I"$inc" -Icsrc/reference -Icsrc/harness csrc/*/*.c -o "$work/_core.so"
            builds=$((builds + 1))
        done
        echo "compilers: $cc ($($cc -dumpversion)) -Wall -Wextra -Werror, -O0 and -O2: $inc"
    done
    CC=$cc bash tools/check_free_threaded.sh
done

# The real thing: pip builds it with each compiler, in a throwaway venv.
PY=${PYTHON:-python3}
"$PY" -m venv "$work/venv"
for cc in gcc clang; do
    # From a fresh copy each time: an in-tree build/ would let setuptools
    # skip compiling with the second compiler.
    rm -rf "$work/src"; mkdir "$work/src"
    cp -r csrc src setup.py pyproject.toml README.md LICENSE "$work/src/"
    "$work/venv/bin/python" -m pip uninstall --quiet --yes gilx >/dev/null 2>&1 || true
    if ! CC=$cc GILX_STRICT=1 "$work/venv/bin/python" -m pip install --quiet --no-cache-dir \
            --no-deps "$work/src" >"$work/pip.log" 2>&1 ||
       ! "$work/venv/bin/python" -c 'import gilx; assert gilx.count_nogil(10) == 10'; then
        cat "$work/pip.log" >&2
        echo "compilers: FAILED: pip build with $cc" >&2
        exit 1
    fi
    echo "compilers: pip install . with CC=$cc GILX_STRICT=1: built and imported"
done
# atomics.h's MSVC branches (x64/ARM64 intrinsics, the compare-and-swap loop of 32-bit
# x86), compiled by clang for MSVC targets as if it were MSVC (-U__clang__), against
# clang's own intrin.h and two stub C runtime headers that intrin.h includes.  No MSVC
# is reachable from Debian or PyPI: this proves the branches are well-formed C, not that
# MSVC has each intrinsic (clang declares the 64-bit ones for i686 too; the text check
# of tests/test_csrc_source.py covers that).
mkdir -p "$work/msvc-stubs"
printf 'typedef int jmp_buf[16];\n' >"$work/msvc-stubs/setjmp.h"
printf '#include <stddef.h>\nvoid *malloc(size_t);\nvoid free(void *);\n' >"$work/msvc-stubs/stdlib.h"
printf '#include <stddef.h>\nvoid *_aligned_malloc(size_t, size_t);\nvoid _aligned_free(void *);\n' \
    >"$work/msvc-stubs/malloc.h"
cat >"$work/msvc.c" <<'EOF_C'
#include "atomics.h"
uint64_t use_all(gilx_atomic_u64 *p)
{
    gilx_atomic_add_one(p);
    gilx_atomic_add_one_release(p);
    uint64_t a = gilx_atomic_fetch_add(p, 3);
    gilx_atomic_store(p, 4);
    gilx_atomic_store_release(p, 5);
    return a + gilx_atomic_load(p) + gilx_atomic_load_acquire(p) + gilx_atomic_exchange(p, 6);
}
EOF_C
for target in i686-pc-windows-msvc x86_64-pc-windows-msvc aarch64-pc-windows-msvc; do
    clang --target=$target -fms-compatibility -fms-extensions -U__clang__ \
        -Wno-builtin-macro-redefined -std=c11 -Wall -Wextra -Werror -fsyntax-only \
        -isystem "$work/msvc-stubs" -Icsrc/reference "$work/msvc.c"
done
echo "compilers: atomics.h's MSVC branches: clang -fsyntax-only for i686, x86_64 and aarch64 windows-msvc"
echo "compilers: passed ($builds warning-free builds, gcc and clang, ${#includes[@]} header sets)"
