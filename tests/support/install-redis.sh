#!/usr/bin/env bash
# Installs Debian's redis-server for the tests of the `redis` feature, which
# start their own servers on free loopback ports (tests/common/redis.rs).
# Does nothing when redis-server is already on PATH; no system redis
# service is started (see apt-install.sh).
exec bash "$(dirname "$0")/apt-install.sh" redis-server=redis-server
