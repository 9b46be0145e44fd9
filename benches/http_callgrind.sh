#!/usr/bin/env bash
# Instructions the school example's server spends per HTTP request, counted
# by callgrind: the same three routes as benches/http_load.sh (bare, admin,
# teacher), each sent N times over one keep-alive connection by curl.
# Independent of the machine's load, unlike requests/s. As in
# http_load.sh, the bare route is sent the admin's token too (BARE_AUTH=0:
# no header), so the difference is the guards' work, not hyper's reading
# of a longer request.
#
#   benches/http_callgrind.sh          # N=400 per route
#   N=1000 benches/http_callgrind.sh
#   KEEP=1 benches/http_callgrind.sh   # keeps the callgrind files (printed)
#
# The server runs under valgrind with instrumentation off until it is up;
# each route is then warmed (the token cache, the permission memo), the
# counters are zeroed, N requests are sent and the counters dumped, so a
# figure counts the server's work for those requests only (all threads).
# Builds the example (release) and installs valgrind with apt-get when
# missing. Binds only 127.0.0.1. Honours CARGO_TARGET_DIR (default: target).
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-400}
BARE_AUTH=${BARE_AUTH:-1}
PORT=${PORT:-3078}
BASE="http://127.0.0.1:${PORT}"
TARGET_DIR=${CARGO_TARGET_DIR:-target}

if ! command -v valgrind >/dev/null; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
fi
cargo build --release --example school >&2

# shellcheck source=benches/support/school_server.sh
. benches/support/school_server.sh
OUT=$(mktemp -d)
LOG="$OUT/server.log"
school_start "$PORT" "$LOG" valgrind --tool=callgrind \
    --instr-atstart=no --callgrind-out-file="$OUT/callgrind.%p"
cleanup() {
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    if [ -n "${KEEP:-}" ]; then echo "callgrind files kept in $OUT" >&2; else rm -rf "$OUT"; fi
}
trap cleanup EXIT

school_wait "$BASE" "$LOG" 600 0.2
callgrind_control -i on "$SERVER" >/dev/null 2>&1

ADMIN=$(school_token "$LOG" admin)
TEACHER=$(school_token "$LOG" teacher)
[ -n "$ADMIN" ] && [ -n "$TEACHER" ] || { cat "$LOG" >&2; echo "no token from the development IAM" >&2; exit 1; }

# send URL COUNT [token]: COUNT requests over one connection, all 200.
send() {
    local url=$1 count=$2 auth=()
    [ $# -gt 2 ] && auth=(-H "Authorization: Bearer $3")
    local codes
    local args=()
    for _ in $(seq 1 "$count"); do args+=(-o /dev/null "$url"); done
    codes=$(curl -s -w '%{http_code}\n' "${auth[@]}" "${args[@]}" | sort -u)
    [ "$codes" = 200 ] || { echo "GET $url answered: $codes" >&2; exit 1; }
}

# measure NAME URL [token] -> "NAME: instructions per request"
measure() {
    local name=$1; shift
    send "$1" 20 "${@:2}"
    callgrind_control -z "$SERVER" >/dev/null 2>&1
    send "$1" "$N" "${@:2}"
    rm -f "$OUT"/callgrind.*.[0-9]*
    callgrind_control -d "$name" "$SERVER" >/dev/null 2>&1
    local file
    file=$(ls -t "$OUT"/callgrind.*.* 2>/dev/null | head -n 1)
    local total
    total=$(sed -n 's/^summary: //p;s/^totals: //p' "$file" | head -n 1)
    [ -n "${KEEP:-}" ] && mv "$file" "$OUT/$name.callgrind"
    echo "$name: $((total / N)) instructions per request ($total over $N)"
}

if [ "$BARE_AUTH" = 1 ]; then
    measure bare "$BASE/bare/students/s-1" "$ADMIN"
else
    measure bare "$BASE/bare/students/s-1"
fi
measure admin "$BASE/students/s-1" "$ADMIN"
measure teacher "$BASE/students/s-1" "$TEACHER"
