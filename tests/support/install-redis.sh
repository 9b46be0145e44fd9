#!/usr/bin/env bash
# Installs Debian's redis-server for the tests of the `redis` feature, which
# start their own servers on free loopback ports (tests/common/redis.rs).
# Does nothing when redis-server is already on PATH. Run by .ci/run; a
# developer on Debian or Ubuntu can run it too.
#
# No system redis service is started by the install: when the machine has
# no /usr/sbin/policy-rc.d, one that refuses every service start is put in
# place for the install and removed afterwards. (On a systemd machine the
# package still enables redis-server.service for the next boot; the tests
# never use port 6379 either way.)
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    echo "install-redis.sh: redis-server is not installed, and installing it needs root (or sudo)" >&2
    exit 1
fi

POLICY=/usr/sbin/policy-rc.d
if [ ! -e "$POLICY" ]; then
    "${SUDO[@]}" sh -c "printf '#!/bin/sh\nexit 101\n' > $POLICY && chmod 755 $POLICY"
    trap '"${SUDO[@]}" rm -f "$POLICY"' EXIT
fi

"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends redis-server

command -v redis-server >/dev/null 2>&1 || {
    echo "install-redis.sh: redis-server is still not on PATH after the install" >&2
    exit 1
}
