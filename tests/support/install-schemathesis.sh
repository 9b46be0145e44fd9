#!/usr/bin/env bash
# Installs schemathesis (the OpenAPI-driven fuzzer of tests/openapi_fuzz.rs)
# from PyPI into a virtual environment under target/, so a clean checkout
# builds it once and later runs reuse it. Does nothing when the pinned
# version is already there. Run by .ci/run; a developer can run it too.
#
# Python itself comes from the machine: when python3 (with its venv module)
# is missing, Debian's python3-venv is installed with apt-get.
set -euo pipefail
cd "$(dirname "$0")/../.."

VERSION=4.32.5
VENV=target/schemathesis
ST="$VENV/bin/st"

if [ -x "$ST" ] && "$ST" --version 2>/dev/null | grep -qF "$VERSION"; then
    exit 0
fi

if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    if [ "$(id -u)" -eq 0 ]; then
        SUDO=()
    elif command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        echo "install-schemathesis.sh: python3 with venv is not installed, and installing it needs root (or sudo)" >&2
        exit 1
    fi
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends python3 python3-venv
fi

rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$VERSION"

"$ST" --version | grep -qF "$VERSION" || {
    echo "install-schemathesis.sh: $ST does not report schemathesis $VERSION after the install" >&2
    exit 1
}
