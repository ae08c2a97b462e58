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
echo "compilers: passed ($builds warning-free builds, gcc and clang, ${#includes[@]} header sets)"
