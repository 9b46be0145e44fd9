#!/usr/bin/env bash
# Installs Debian's protobuf-compiler (protoc) for tests/grpc_codegen.rs,
# which regenerates the grpc example's Rust code from
# examples/grpc/proto/*.proto and fails when it differs from the committed
# file. Only that test needs protoc: the library and the example build
# without it. Does nothing when protoc is already on PATH.
exec bash "$(dirname "$0")/apt-install.sh" protoc=protobuf-compiler
