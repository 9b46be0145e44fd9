#!/usr/bin/env bash
# Installs Debian's protobuf-compiler (protoc) for tests/grpc_codegen.rs,
# which regenerates the grpc example's Rust code from
# examples/grpc/proto/*.proto and fails when it differs from the committed
# file. Only that test needs protoc: the library and the example build
# without it. Does nothing when protoc is already on PATH. Run by .ci/run;
# a developer on Debian or Ubuntu can run it too.
set -euo pipefail

if command -v protoc >/dev/null 2>&1; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    echo "install-protoc.sh: protoc is not installed, and installing it needs root (or sudo)" >&2
    exit 1
fi

"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends protobuf-compiler

command -v protoc >/dev/null 2>&1 || {
    echo "install-protoc.sh: protoc is still not on PATH after the install" >&2
    exit 1
}
