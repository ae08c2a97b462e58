#!/usr/bin/env bash
# Build a CPython 3.13 from Debian's python3.13 source package, by flavour:
#
#   bash tools/build_cpython.sh gil       # the default build (the GIL is on)
#   bash tools/build_cpython.sh ft        # free-threaded: --disable-gil (3.13t)
#   bash tools/build_cpython.sh tsan-ft   # free-threaded + ThreadSanitizer
#
# Progress goes to stderr, one line per step; stdout is only the path of the
# built interpreter (python=$(bash tools/build_cpython.sh ft)).  Builds go to
# a cache folder outside the checkout ($GILX_CPYTHON_CACHE, default
# ~/.cache/gilx-cpython) and are reused: a second run builds nothing.
#
# Why Debian's source package: it is the one CPython source this project's
# machines can reach (through apt, no other download).  apt is pointed at a
# private sources file and a private list directory, so the machine's own apt
# configuration is never touched.
#
# Users don't need this: python.org's installers, `uv python install 3.14t`
# and distribution packages (python3.13-nogil) give a free-threaded Python.
# It exists for CI and for this repository's own measurements.
set -euo pipefail

flavour=${1:-gil}
case $flavour in
    gil) configure_flags=() ;;
    ft) configure_flags=(--disable-gil) ;;
    tsan-ft) configure_flags=(--disable-gil --with-thread-sanitizer) ;;
    *)
        echo "build_cpython: unknown flavour '$flavour' (expected gil, ft or tsan-ft)" >&2
        exit 2
        ;;
esac

cache=${GILX_CPYTHON_CACHE:-$HOME/.cache/gilx-cpython}
suite=${GILX_CPYTHON_SUITE:-trixie}
prefix=$cache/$flavour
python=$prefix/bin/python3.13
[[ $flavour == gil ]] || python=$prefix/bin/python3.13t

fail() {
    echo "build_cpython: FAILED: $*" >&2
    exit 1
}

if [[ -x $python ]] && "$python" -c 'import ssl, sqlite3, ctypes, venv' 2>/dev/null; then
    echo "build_cpython: $flavour: reusing $python" >&2
    echo "$python"
    exit 0
fi
mkdir -p "$cache"

# 1. The source: Debian's orig tarball of python3.13, fetched with apt.
src_tar=$(ls "$cache"/download/python3.13_*.orig.tar.* 2>/dev/null | head -n1 || true)
if [[ -z $src_tar ]]; then
    echo "build_cpython: fetching Debian's python3.13 source ($suite) with apt" >&2
    apt_dir=$cache/apt
    mkdir -p "$apt_dir/sources.list.d" "$apt_dir/lists/partial" "$cache/download"
    cat >"$apt_dir/sources.list.d/gilx-src.sources" <<EOF
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $suite
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    apt_opts=(-o "Dir::Etc::sourcelist=/dev/null"
        -o "Dir::Etc::sourceparts=$apt_dir/sources.list.d"
        -o "Dir::State::Lists=$apt_dir/lists"
        -o "APT::Get::List-Cleanup=0")
    apt-get "${apt_opts[@]}" update -qq >"$cache/apt-update.log" 2>&1 ||
        fail "apt-get update of the private deb-src list (see $cache/apt-update.log)"
    (cd "$cache/download" &&
        apt-get "${apt_opts[@]}" source --download-only -qq python3.13 >"$cache/apt-source.log" 2>&1) ||
        fail "apt-get source --download-only python3.13 (see $cache/apt-source.log)"
    src_tar=$(ls "$cache"/download/python3.13_*.orig.tar.* 2>/dev/null | head -n1 || true)
    [[ -n $src_tar ]] || fail "apt downloaded no python3.13 orig tarball into $cache/download"
fi
version=$(basename "$src_tar" | sed -E 's/^python3\.13_([0-9.]+)\.orig.*/\1/')

# 2. Unpack a fresh tree per flavour (configure results must not mix).
build=$cache/build-$flavour
rm -rf "$build"
mkdir -p "$build"
echo "build_cpython: $flavour: unpacking CPython $version" >&2
tar -xf "$src_tar" -C "$build" --strip-components=1 || fail "unpacking $src_tar"

# 3. Headers for the optional modules venv/pip/ssl need; installed with apt
#    only when missing (root on this project's machines).
need=()
for pkg in libssl-dev libffi-dev zlib1g-dev libsqlite3-dev libbz2-dev liblzma-dev libreadline-dev; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ((${#need[@]})); then
    echo "build_cpython: installing ${need[*]} with apt" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; } \
        >"$cache/apt-install.log" 2>&1 || fail "apt-get install ${need[*]} (see $cache/apt-install.log)"
fi

# 4. Configure, build, install.  No --enable-optimizations: PGO would triple
#    the build time; both flavours are built the same way, so comparisons
#    between them stay fair.
jobs=$(nproc 2>/dev/null || echo 2)
cd "$build"
echo "build_cpython: $flavour: configure ${configure_flags[*]:-(default)}" >&2
./configure --prefix="$prefix" --without-ensurepip "${configure_flags[@]}" \
    >"$build/configure.log" 2>&1 || fail "configure (see $build/configure.log)"
echo "build_cpython: $flavour: make -j$jobs" >&2
make -j"$jobs" >"$build/make.log" 2>&1 || fail "make (see $build/make.log)"
echo "build_cpython: $flavour: make install" >&2
rm -rf "$prefix"
# COMPILEALL_OPTS=-j0: byte-compile the standard library on every core.  It is
# most of make install's time, and under ThreadSanitizer (tsan-ft) it took 12 of
# the build's 16 minutes on 2 cores, one process at a time.
make install COMPILEALL_OPTS=-j0 >"$build/install.log" 2>&1 ||
    fail "make install (see $build/install.log)"
"$python" -m ensurepip --default-pip >/dev/null 2>&1 || true
"$python" -c 'import ssl, sqlite3, ctypes, venv' || fail "the built $python lacks ssl/sqlite3/ctypes/venv"
if [[ $flavour == tsan-ft ]]; then
    cp Tools/tsan/suppressions_free_threading.txt "$prefix/tsan-suppressions.txt"
fi
echo "build_cpython: $flavour: built CPython $version at $prefix" >&2
echo "$python"
