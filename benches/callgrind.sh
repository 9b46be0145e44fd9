#!/usr/bin/env bash
# Instructions per request of one case of benches/auth.rs (or of
# benches/<group>.rs when the case's group has its own file, such as
# dpop/...), counted by
# callgrind: independent of the machine's load, repeatable for the same
# binary. The case runs alone N times inside `count_loop`, and only that
# function (and what it calls) is counted: key generation, the test IAM
# and warm-up stay out.
#
#   benches/callgrind.sh stack/full_get_cached_token [N]   (default N=2000)
#
# Builds the bench binary (release) if needed; installs valgrind with
# apt-get if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
case_name=${1:?usage: benches/callgrind.sh <group>/<name> [iterations]}
n=${2:-2000}
if ! command -v valgrind >/dev/null; then
  apt-get install -y valgrind >/dev/null
fi
group=${case_name%%/*}
bench=auth
if [ -f "benches/$group.rs" ]; then bench=$group; fi
bin=$(cargo bench --all-features --bench "$bench" --no-run --message-format=json 2>/dev/null \
  | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | grep "/$bench-" | tail -n 1)
[ -x "$bin" ] || { echo "no bench binary" >&2; exit 1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
IAM_GUARD_COUNT="$case_name:$n" valgrind --tool=callgrind --collect-atstart=no \
  --toggle-collect='*count_loop*' --callgrind-out-file="$out" "$bin" --bench >/dev/null 2>&1
total=$(sed -n 's/^summary: //p;s/^totals: //p' "$out" | head -n 1)
echo "$case_name: $(( total / n )) instructions per request ($total over $n)"
