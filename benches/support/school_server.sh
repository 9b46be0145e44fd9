# Sourced by benches/http_load.sh and benches/http_callgrind.sh: the school
# example, started with its bare benchmark routes on 127.0.0.1, waited for,
# and asked for tokens by its embedded development IAM.
#
#   school_start PORT LOG [launcher ...]   starts it (under the launcher,
#                                          valgrind say, if given); sets SERVER
#   school_wait BASE LOG TRIES PAUSE       until GET BASE/health answers; exits
#                                          with the log if the server died
#   school_token LOG USER                  prints USER's access token, or
#                                          nothing when the IAM gives none
#
# The example is built (release) by the caller; TARGET_DIR is where.

school_start() {
    local port=$1 log=$2
    shift 2
    SCHOOL_BARE_ROUTES=1 BIND_ADDR="127.0.0.1:${port}" \
        "$@" "$TARGET_DIR/release/examples/school" >"$log" 2>&1 &
    SERVER=$!
}

school_wait() {
    local base=$1 log=$2 tries=$3 pause=$4
    for _ in $(seq 1 "$tries"); do
        curl -sf "$base/health" >/dev/null 2>&1 && return 0
        kill -0 "$SERVER" 2>/dev/null || { cat "$log" >&2; echo "school exited" >&2; exit 1; }
        sleep "$pause"
    done
    curl -sf "$base/health" >/dev/null || { cat "$log" >&2; echo "school did not start" >&2; exit 1; }
}

school_token() {
    local log=$1 user=$2 issuer
    issuer=$(grep -o 'Development IAM[^:]*: http://127\.0\.0\.1:[0-9]*' "$log" | grep -o 'http://.*' || true)
    [ -n "$issuer" ] || return 0
    curl -sf -X POST "$issuer/token" -H 'Content-Type: application/json' \
        -d "{\"user\":\"$user\"}" | sed -n 's/.*"access_token" *: *"\([^"]*\)".*/\1/p' || true
}
