#!/usr/bin/env bash
# Run the whole test suite on every CPython >= 3.10 on this machine: each
# pyenv version, plus the system's python3.1x, each in a fresh virtual
# environment with gilx installed from this checkout (GILX_STRICT=1).
#
#   bash tools/all_pythons.sh [pytest args...]
#
# Exits non-zero if any Python fails, if none is found, or if none is 3.12+
# (the subinterpreter and --mode interpreters tests need one).  Set GILX_PYTHONS
# to a space-separated list of interpreters to test those instead.
set -euo pipefail
cd "$(dirname "$0")/.."

find_pythons() {
    if [[ -n ${GILX_PYTHONS:-} ]]; then
        printf '%s\n' $GILX_PYTHONS; return
    fi
    local root exe
    if command -v pyenv >/dev/null 2>&1; then
        root=$(pyenv root)
        for exe in "$root"/versions/3.*/bin/python3; do
            [[ -x $exe ]] && echo "$exe"
        done
    fi
    for exe in /usr/bin/python3.1[0-9] /usr/local/bin/python3.1[0-9]; do
        [[ -x $exe ]] && echo "$exe"
    done
}

# Keep CPython >= 3.10, one entry per real interpreter.
mapfile -t candidates < <(find_pythons)
declare -A seen=()
pythons=()
for exe in "${candidates[@]}"; do
    real=$(readlink -f "$exe")
    [[ -n ${seen[$real]:-} ]] && continue
    seen[$real]=1
    if "$exe" -c 'import sys; sys.exit(not (sys.implementation.name == "cpython" and sys.version_info >= (3, 10)))' 2>/dev/null; then
        pythons+=("$exe")
    fi
done
if [[ ${#pythons[@]} -eq 0 ]]; then
    echo "all_pythons: FAILED: no CPython >= 3.10 found" >&2
    exit 1
fi

work=$(mktemp -d /tmp/gilx-allpy.XXXXXX)
trap 'rm -rf "$work"' EXIT
declare -A result=()
failed=0
for exe in "${pythons[@]}"; do
    version=$("$exe" -c 'import platform, sys; print(platform.python_version() + ("t" if "free-threading" in sys.version else ""))')
    name="$version ($exe)"
    printf '\n=== %s\n' "$name"
    venv="$work/venv-$version-$RANDOM"
    if ! "$exe" -m venv "$venv"; then
        result[$name]="FAILED (no venv module)"; failed=1; continue
    fi
    if ! { "$venv/bin/python" -m pip install --quiet --upgrade pip &&
           GILX_STRICT=1 "$venv/bin/python" -m pip install --quiet ".[test,interpreters]"; }; then
        result[$name]="FAILED (install)"; failed=1; continue
    fi
    # tests/test_interpreters.py skips where --mode interpreters cannot run: on 3.12+ it must
    # run (the interpreters extra is installed above), or this Python fails here.
    if "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 12))' &&
       ! "$venv/bin/python" -c 'from gilx.backends.interpreters import require; require()'; then
        result[$name]="FAILED (--mode interpreters cannot run)"; failed=1; continue
    fi
    # -p no:cacheprovider: several Pythons must not share .pytest_cache.
    if "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"; then
        result[$name]="passed"
    else
        result[$name]="FAILED (tests)"; failed=1
    fi
    rm -rf "$venv"
done

# tests/test_subinterpreters.py skips below 3.12: make sure some Python here
# ran it, or say that the check did not run.
subinterp=0
for exe in "${pythons[@]}"; do
    "$exe" -c 'import sys; sys.exit(sys.version_info < (3, 12))' && subinterp=1
done
if [[ $subinterp -eq 0 && -z ${GILX_PYTHONS:-} ]]; then
    echo "all_pythons: FAILED: no CPython >= 3.12 here, so the subinterpreter check did not run"
    failed=1
fi

printf '\n=== all_pythons: %d CPython(s)\n' "${#pythons[@]}"
for name in "${!result[@]}"; do
    printf '  %-60s %s\n' "$name" "${result[$name]}"
done | sort
exit $failed
