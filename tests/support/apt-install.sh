#!/usr/bin/env bash
# Installs the Debian packages of the tools the tests need, those whose
# command is not on PATH yet, with one `apt-get update` for all of them:
#
#   tests/support/apt-install.sh COMMAND=PACKAGE...
#   tests/support/apt-install.sh redis-server=redis-server protoc=protobuf-compiler
#
# Does nothing when every command is there. Needs root or sudo otherwise.
# Run by .ci/run (and by the install-*.sh scripts, one tool each); a
# developer on Debian or Ubuntu can run it too.
#
# No system service is started by an install: when the machine has no
# /usr/sbin/policy-rc.d, one that refuses every service start is put in
# place for the install and removed afterwards (redis-server would start
# one on port 6379; the tests start their own servers on free ports).
set -euo pipefail

[ "$#" -gt 0 ] || { echo "usage: $0 COMMAND=PACKAGE..." >&2; exit 2; }

commands=()
missing=()
for pair in "$@"; do
    command=${pair%%=*}
    package=${pair#*=}
    if [ -z "$command" ] || [ -z "$package" ] || [ "$command" = "$pair" ]; then
        echo "apt-install.sh: '$pair' is not COMMAND=PACKAGE" >&2
        exit 2
    fi
    commands+=("$command")
    command -v "$command" >/dev/null 2>&1 || missing+=("$package")
done
[ "${#missing[@]}" -gt 0 ] || exit 0

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    echo "apt-install.sh: ${missing[*]} not installed, and installing needs root (or sudo)" >&2
    exit 1
fi

POLICY=/usr/sbin/policy-rc.d
if [ ! -e "$POLICY" ]; then
    "${SUDO[@]}" sh -c "printf '#!/bin/sh\nexit 101\n' > $POLICY && chmod 755 $POLICY"
    trap '"${SUDO[@]}" rm -f "$POLICY"' EXIT
fi

"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}"

for command in "${commands[@]}"; do
    command -v "$command" >/dev/null 2>&1 || {
        echo "apt-install.sh: $command is still not on PATH after the install" >&2
        exit 1
    }
done
