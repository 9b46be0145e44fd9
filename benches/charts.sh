#!/usr/bin/env bash
# The command that made docs/charts/*.svg ("how cost grows"):
#
#   1. cargo bench --all-features --bench scaling   (criterion: response size,
#      roles in the token, token cache hit ratio; guarded and bare in one run)
#   2. benches/http_load.sh in its concurrency sweep (wrk over loopback
#      against the school example, bare and guarded, 1 … 256 connections)
#   3. python3 benches/charts.py, which reads criterion's own files and the
#      sweep's output and writes the SVGs
#
#   benches/charts.sh                        # everything, about 7 minutes on 2 cores
#   SKIP_BENCH=1 SKIP_HTTP=1 benches/charts.sh   # redraw from the last runs' output
#   SWEEP="1 8 64" ROUNDS=3 DURATION=5s benches/charts.sh
#
# Honours CARGO_TARGET_DIR (criterion writes under $CARGO_TARGET_DIR/criterion)
# and CRITERION_HOME. Needs python3 (3.11, standard library only) and wrk
# (benches/http_load.sh installs it with apt-get when missing).
set -euo pipefail

cd "$(dirname "$0")/.."
TARGET_DIR=${CARGO_TARGET_DIR:-target}
CRITERION=${CRITERION_HOME:-$TARGET_DIR/criterion}
HTTP_OUT=${HTTP_OUT:-$TARGET_DIR/http_sweep.txt}

# The captions name the commit and date the benches ran at, not those of a
# later redraw: a stamp written when they run, read when they are skipped.
STAMP=$TARGET_DIR/charts_stamp.txt
if [ -z "${SKIP_BENCH:-}" ] || [ -z "${SKIP_HTTP:-}" ]; then
    rev=$(git rev-parse --short HEAD)
    git diff --quiet HEAD -- src benches examples fixtures Cargo.toml Cargo.lock || rev="$rev-dirty"
    mkdir -p "$TARGET_DIR"
    echo "$rev $(date -u +%Y-%m-%d)" >"$STAMP"
fi

if [ -z "${SKIP_BENCH:-}" ]; then
    cargo bench --all-features --bench scaling
fi
if [ -z "${SKIP_HTTP:-}" ]; then
    SWEEP=${SWEEP:-"1 2 4 8 16 32 64 128 256"} ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-3s} \
        OUT="$HTTP_OUT" benches/http_load.sh
fi
STAMP_ARGS=()
if [ -f "$STAMP" ]; then
    read -r rev day <"$STAMP"
    STAMP_ARGS=(--commit "$rev" --date "$day")
fi
python3 benches/charts.py --criterion "$CRITERION" --http "$HTTP_OUT" --out docs/charts "${STAMP_ARGS[@]}"
