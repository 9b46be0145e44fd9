#!/usr/bin/env bash
# HTTP load over loopback: the school example (release build), started with
# SCHOOL_BARE_ROUTES=1, serving the same handler twice:
#
#   bare     GET /bare/students/s-1  same store lookup, the record serialized
#                                    whole, no guard at all
#   guarded  GET /students/s-1       JwtAuthGuard with the token cache, READ
#                                    requirement, catalogue permissions, the
#                                    record serialized through a ReadView
#                                    (FieldFilter vouches for it without a
#                                    scan); admin token (all 8 groups)
#   guarded  GET /students/s-1       the same with a teacher token (5 of 8
#                                    groups written)
#
# so the ratio measures the guards, not the handler. The bare route is sent
# the admin's Authorization header too (and ignores it): the same request
# bytes on both sides, so the ratio does not count hyper reading a token the
# guards were never asked about. BARE_AUTH=0 sends the bare route no header.
# GET /health is only the readiness probe.
#
#   benches/http_load.sh                   # 5 rounds x 5 s per route, 2 threads, 32 connections
#   ROUNDS=3 DURATION=10s CONNECTIONS=64 benches/http_load.sh
#
# Concurrency sweep (for benches/charts.sh): SWEEP lists connection counts;
# each count gets ROUNDS rounds of the three routes (wrk threads: at most
# one per connection), and every run appends "connections route req/s p50
# p99" to OUT (default: $CARGO_TARGET_DIR/http_sweep.txt):
#
#   SWEEP="1 2 4 8 16 32 64 128 256" ROUNDS=1 DURATION=3s benches/http_load.sh
#
# The routes take turns (bare, admin, teacher, bare, ...) for ROUNDS rounds
# so that a change in background load hits all of them alike; req/s is the
# mean over the rounds, p50/p99 the median of the rounds' figures, and each
# round's own guarded/bare ratio is printed too.
#
# Bounds: wrk (and oha with -z) can only be bounded by time, not by a
# request count, so DURATION is the bound per route and round; each run is also
# wrapped in `timeout` (DURATION + 30 s) as a hard wall-clock stop.
# Installs wrk from Debian (apt-get) when neither wrk nor oha is on PATH.
# Binds only 127.0.0.1. Honours CARGO_TARGET_DIR (default: target).
# Target (DESIGN.md §8): guarded ≥ 85 % of bare req/s.
set -euo pipefail

DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-5}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
PORT=${PORT:-3077}
BASE="http://127.0.0.1:${PORT}"
TARGET_DIR=${CARGO_TARGET_DIR:-target}
WARMUP=${WARMUP:-2s}
BARE_AUTH=${BARE_AUTH:-1}
SWEEP=${SWEEP:-}
OUT=${OUT:-$TARGET_DIR/http_sweep.txt}

# DURATION (e.g. 10s, 1m) in seconds, for the hard timeout.
secs() {
    case $1 in
        *ms) echo 1 ;;
        *s) echo "${1%s}" ;;
        *m) echo $((${1%m} * 60)) ;;
        *h) echo $((${1%h} * 3600)) ;;
        *) echo "$1" ;;
    esac
}

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

# shellcheck source=benches/support/school_server.sh
. benches/support/school_server.sh
LOG=$(mktemp)
school_start "$PORT" "$LOG"
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; rm -f "$LOG"' EXIT
school_wait "$BASE" "$LOG" 100 0.1

# Tokens from the embedded development IAM's POST /token; failing that,
# the admin token in the printed walkthrough (and no teacher line).
TOKEN=$(school_token "$LOG" admin)
if [ -z "$TOKEN" ]; then
    TOKEN=$(grep -m1 -o "Bearer [A-Za-z0-9._-]*" "$LOG" | cut -d' ' -f2)
fi
TEACHER=$(school_token "$LOG" teacher)
# What the bare route is sent: the admin's request, token and all, or none.
BARE_HDR=()
[ "$BARE_AUTH" = 1 ] && BARE_HDR=("Authorization: Bearer $TOKEN")

# check URL [token]: must answer 200; prints the body size.
check() {
    local url=$1 auth=()
    [ $# -gt 1 ] && auth=(-H "Authorization: Bearer $2")
    local out
    out=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "${auth[@]}" "$url")
    [ "${out%% *}" = 200 ] || { echo "GET $url answered ${out%% *}" >&2; exit 1; }
    echo "${out##* }"
}
BARE_BYTES=$(check "$BASE/bare/students/s-1" "$TOKEN")
ADMIN_BYTES=$(check "$BASE/students/s-1" "$TOKEN")
if [ -n "$TEACHER" ]; then
    TEACHER_BYTES=$(check "$BASE/students/s-1" "$TEACHER")
fi

# load DURATION URL [header] -> "req/s p50 p99" (latencies in µs)
load() {
    local dur=$1 url=$2; shift 2
    local stop=$(($(secs "$dur") + 30))
    if [ "$TOOL" = wrk ]; then
        local hdr=()
        [ $# -gt 0 ] && hdr=(-H "$1")
        timeout "$stop" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$dur" --latency "${hdr[@]}" "$url" | awk '
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
        timeout "$stop" oha --no-tui -z "$dur" -c "$CONNECTIONS" "${hdr[@]}" "$url" | awk '
            /Requests\/sec:/ { rps = $2 }
            $1 == "50.00%" { p50 = $3 * 1000000 }
            $1 == "99.00%" { p99 = $3 * 1000000 }
            END { printf "%.0f %.0f %.0f\n", rps, p50, p99 }'
    fi
}

echo "$TOOL: $THREADS threads, $CONNECTIONS connections, $ROUNDS rounds x $DURATION per route (after a $WARMUP warm-up), $(nproc) CPUs (shared by server and load generator); bare route sent the token: $([ "$BARE_AUTH" = 1 ] && echo yes || echo no)"
for url in "$BASE/bare/students/s-1" "$BASE/students/s-1"; do
    load "$WARMUP" "$url" "Authorization: Bearer $TOKEN" >/dev/null 2>&1
done
if [ -n "$SWEEP" ]; then
    MAX_THREADS=$THREADS
    mkdir -p "$(dirname "$OUT")"
    {
        echo "# benches/http_load.sh sweep: $TOOL, $ROUNDS rounds x $DURATION per route, $(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "# bytes: bare $BARE_BYTES, admin $ADMIN_BYTES, teacher ${TEACHER_BYTES:-}"
        echo "# connections route req/s p50_us p99_us"
    } >"$OUT"
    for c in $SWEEP; do
        CONNECTIONS=$c
        THREADS=$((c < MAX_THREADS ? c : MAX_THREADS))
        for _ in $(seq 1 "$ROUNDS"); do
            echo "$c bare $(load "$DURATION" "$BASE/bare/students/s-1" "${BARE_HDR[@]}")" >>"$OUT"
            echo "$c admin $(load "$DURATION" "$BASE/students/s-1" "Authorization: Bearer $TOKEN")" >>"$OUT"
            if [ -n "$TEACHER" ]; then
                echo "$c teacher $(load "$DURATION" "$BASE/students/s-1" "Authorization: Bearer $TEACHER")" >>"$OUT"
            fi
        done
        awk -v c="$c" '$1 == c { n[$2]++; r[$2] += $3 }
            END { printf "%d connections: bare %d req/s, admin %d (%.1f %%)", c, r["bare"] / n["bare"], r["admin"] / n["admin"], 100 * r["admin"] / n["admin"] / (r["bare"] / n["bare"])
                  if (n["teacher"]) printf ", teacher %d (%.1f %%)", r["teacher"] / n["teacher"], 100 * r["teacher"] / n["teacher"] / (r["bare"] / n["bare"])
                  printf "\n" }' "$OUT"
    done
    echo "sweep written to $OUT"
    exit 0
fi

# One line per run: "route req/s p50 p99".
RESULTS=$(mktemp)
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; rm -f "$LOG" "$RESULTS"' EXIT
for round in $(seq 1 "$ROUNDS"); do
    echo "bare $(load "$DURATION" "$BASE/bare/students/s-1" "${BARE_HDR[@]}")" >>"$RESULTS"
    echo "admin $(load "$DURATION" "$BASE/students/s-1" "Authorization: Bearer $TOKEN")" >>"$RESULTS"
    if [ -n "$TEACHER" ]; then
        echo "teacher $(load "$DURATION" "$BASE/students/s-1" "Authorization: Bearer $TEACHER")" >>"$RESULTS"
    fi
    awk -v r="$round" '$1 == "bare" { b = $2 } $1 == "admin" { a = $2 } $1 == "teacher" { t = $2 }
        END { printf "round %d: bare %d req/s, admin %d (%.1f %%)", r, b, a, 100 * a / b
              if (t != "") printf ", teacher %d (%.1f %%)", t, 100 * t / b
              printf "\n" }' < <(tail -n 3 "$RESULTS" | grep -v '^$')
done

# stats ROUTE -> "mean-req/s median-p50 median-p99"
stats() {
    awk -v k="$1" '$1 == k { n++; rps += $2; p50[n] = $3; p99[n] = $4 }
        function median(a, n,   i, j, t) {
            for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
            return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        END { printf "%.0f %.0f %.0f\n", rps / n, median(p50, n), median(p99, n) }' "$RESULTS"
}
read -r BARE_RPS BARE_P50 BARE_P99 < <(stats bare)
read -r GUARD_RPS GUARD_P50 GUARD_P99 < <(stats admin)
[ -z "$TEACHER" ] || read -r TEACH_RPS TEACH_P50 TEACH_P99 < <(stats teacher)

printf '%-48s %8s %10s %10s %10s %8s\n' route "bytes" "req/s" "p50 µs" "p99 µs" "ratio"
row() {
    awk -v n="$1" -v by="$2" -v r="$3" -v p50="$4" -v p99="$5" -v b="$BARE_RPS" \
        'BEGIN { printf "%-48s %8s %10s %10s %10s %7.1f%%\n", n, by, r, p50, p99, 100 * r / b }'
}
row "GET /bare/students/s-1 (bare, same handler)" "$BARE_BYTES" "$BARE_RPS" "$BARE_P50" "$BARE_P99"
row "GET /students/s-1 (guarded, admin)" "$ADMIN_BYTES" "$GUARD_RPS" "$GUARD_P50" "$GUARD_P99"
[ -z "$TEACHER" ] || row "GET /students/s-1 (guarded, teacher)" "$TEACHER_BYTES" "$TEACH_RPS" "$TEACH_P50" "$TEACH_P99"
awk -v g="$GUARD_RPS" -v b="$BARE_RPS" 'BEGIN { printf "guarded (admin) / bare requests/s: %.1f %% (target >= 85 %%)\n", 100 * g / b }'
