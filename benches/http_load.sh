#!/usr/bin/env bash
# HTTP load over loopback: the school example (release build) serving
# `GET /health` (no guard) and `GET /students/s-1` (JwtAuthGuard with the
# token cache, READ requirement, FieldFilter, catalogue permissions) to wrk.
#
#   benches/http_load.sh                   # 10 s per route, 2 threads, 32 connections
#   DURATION=20s CONNECTIONS=64 benches/http_load.sh
#
# Installs wrk from Debian (apt-get) when neither wrk nor oha is on PATH.
# Binds only 127.0.0.1. Target (DESIGN.md §8): guarded ≥ 85 % of bare req/s.
set -euo pipefail

DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
PORT=${PORT:-3077}
BASE="http://127.0.0.1:${PORT}"

cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null && ! command -v oha >/dev/null; then
    echo "installing wrk (apt-get)..." >&2
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq >/dev/null
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
TOOL=wrk
command -v wrk >/dev/null || TOOL=oha

cargo build --release --example school >&2

LOG=$(mktemp)
BIND_ADDR="127.0.0.1:${PORT}" target/release/examples/school >"$LOG" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; rm -f "$LOG"' EXIT

for _ in $(seq 1 100); do
    curl -sf "$BASE/health" >/dev/null 2>&1 && break
    kill -0 "$SERVER" 2>/dev/null || { cat "$LOG" >&2; echo "school exited" >&2; exit 1; }
    sleep 0.1
done

# An admin token from the embedded development IAM's POST /token; failing
# that, the admin token in the printed walkthrough.
ISSUER=$(grep -o 'Development IAM[^:]*: http://127\.0\.0\.1:[0-9]*' "$LOG" | grep -o 'http://.*' || true)
TOKEN=""
if [ -n "$ISSUER" ]; then
    TOKEN=$(curl -sf -X POST "$ISSUER/token" -H 'Content-Type: application/json' \
        -d '{"user":"admin"}' | sed -n 's/.*"access_token" *: *"\([^"]*\)".*/\1/p' || true)
fi
if [ -z "$TOKEN" ]; then
    TOKEN=$(grep -m1 -o "Bearer [A-Za-z0-9._-]*" "$LOG" | cut -d' ' -f2)
fi
STATUS=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$BASE/students/s-1")
[ "$STATUS" = 200 ] || { echo "GET /students/s-1 with the admin token answered $STATUS" >&2; exit 1; }

# load URL [header] -> "req/s p50 p99" (latencies in µs)
load() {
    local url=$1; shift
    if [ "$TOOL" = wrk ]; then
        local hdr=()
        [ $# -gt 0 ] && hdr=(-H "$1")
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "${hdr[@]}" "$url" | awk '
            function us(v) {
                if (v ~ /us$/) return v + 0
                if (v ~ /ms$/) return v * 1000
                if (v ~ /s$/)  return v * 1000000
                return v
            }
            $1 == "50%" { p50 = us($2) }
            $1 == "99%" { p99 = us($2) }
            $1 == "Requests/sec:" { rps = $2 }
            /Non-2xx/ { print "non-2xx responses: " $0 > "/dev/stderr" }
            END { printf "%.0f %.0f %.0f\n", rps, p50, p99 }'
    else
        local hdr=()
        [ $# -gt 0 ] && hdr=(-H "$1")
        oha --no-tui -z "$DURATION" -c "$CONNECTIONS" "${hdr[@]}" "$url" | awk '
            /Requests\/sec:/ { rps = $2 }
            $1 == "50.00%" { p50 = $3 * 1000000 }
            $1 == "99.00%" { p99 = $3 * 1000000 }
            END { printf "%.0f %.0f %.0f\n", rps, p50, p99 }'
    fi
}

echo "$TOOL: $THREADS threads, $CONNECTIONS connections, $DURATION per route, $(nproc) CPUs (shared by server and load generator)"
read -r BARE_RPS BARE_P50 BARE_P99 < <(load "$BASE/health")
read -r GUARD_RPS GUARD_P50 GUARD_P99 < <(load "$BASE/students/s-1" "Authorization: Bearer $TOKEN")

printf '%-36s %12s %10s %10s\n' route "req/s" "p50 µs" "p99 µs"
printf '%-36s %12s %10s %10s\n' "GET /health (bare)" "$BARE_RPS" "$BARE_P50" "$BARE_P99"
printf '%-36s %12s %10s %10s\n' "GET /students/s-1 (guarded, admin)" "$GUARD_RPS" "$GUARD_P50" "$GUARD_P99"
awk -v g="$GUARD_RPS" -v b="$BARE_RPS" 'BEGIN { printf "guarded / bare requests/s: %.1f %% (target >= 85 %%)\n", 100 * g / b }'
