#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 60 s each), after
# replaying the kept regression inputs.
#
#   fuzz/run.sh            # 60 s per target
#   fuzz/run.sh 600        # 10 min per target
#   fuzz/run.sh 60 token   # one target
#
# Needs a nightly toolchain and cargo-fuzz:
#   rustup toolchain install nightly && cargo install cargo-fuzz
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(fields token jwks)
fi
cargo +nightly fuzz build
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "regressions/$t"
    echo "== $t: regressions"
    if compgen -G "regressions/$t/*" >/dev/null; then
        cargo +nightly fuzz run "$t" regressions/$t/* -- -runs=1
    fi
    echo "== $t: fuzzing for ${secs}s"
    # New inputs go to corpus/ (not kept in git); seeds/ is read only.
    mkdir -p "seeds/$t"
    cargo +nightly fuzz run "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -max_len=8192 -timeout=10 -print_final_stats=1
done
