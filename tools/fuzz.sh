#!/usr/bin/env bash
# The long fuzz run: tests/test_fuzz.py with $GILX_FUZZ_EXAMPLES examples
# per property (default 10,000), in a fresh virtual environment with gilx
# installed from this checkout.  Hypothesis prints, for every property, how
# many examples passed; the run fails on the first counterexample.
#
#   bash tools/fuzz.sh            # 10,000 examples per property (~10 minutes)
#   GILX_FUZZ_EXAMPLES=500 bash tools/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."

export GILX_FUZZ_EXAMPLES=${GILX_FUZZ_EXAMPLES:-10000}
PY=${PYTHON:-python3}
work=$(mktemp -d /tmp/gilx-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$PY" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --upgrade pip
GILX_STRICT=1 "$work/venv/bin/python" -m pip install --quiet ".[test]"
"$work/venv/bin/python" -m pytest -p no:cacheprovider tests/test_fuzz.py \
    --hypothesis-show-statistics "$@" | tee "$work/out.txt"
# A property that ran fewer examples than asked (e.g. hypothesis stopped
# early) is reported, not hidden.
if grep -E -- "- [0-9]+ passing" "$work/out.txt" |
        awk -v want="$GILX_FUZZ_EXAMPLES" '{ if ($2 + 0 < want) short = 1 } END { exit !short }'; then
    echo "fuzz: FAILED: a property ran fewer than $GILX_FUZZ_EXAMPLES examples" >&2
    exit 1
fi
total=$(grep -E -- "- [0-9]+ passing" "$work/out.txt" | awk '{ s += $2 } END { print s }')
echo "fuzz: passed: $total examples, at least $GILX_FUZZ_EXAMPLES for each property"
