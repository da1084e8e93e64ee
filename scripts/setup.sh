#!/usr/bin/env bash
# Installs what StreamLake needs, reusing whatever is already there.
#   scripts/setup.sh          system libraries to build (cmake, OpenSSL, zstd, zlib, curl headers, pkg-config)
#   scripts/setup.sh --test   also what the tests use: the tansu broker and Python confluent-kafka
set -euo pipefail
cd "$(dirname "$0")/.."

# libcurl4-openssl-dev: librdkafka 2.12 includes curl.h even when built without curl.
APT_PACKAGES=(cmake pkg-config libssl-dev libzstd-dev zlib1g-dev libcurl4-openssl-dev)
TANSU_VERSION=0.6.0

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  echo "setup: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

[ "${1:-}" = "--test" ] || exit 0

# tansu: a real, independently written Kafka-compatible broker for the tests (about 10-20
# minutes to build the first time; reused after).
if ! cargo install --list | grep -q "^tansu v${TANSU_VERSION}:"; then
  echo "setup: building tansu ${TANSU_VERSION} (first time only)" >&2
  cargo install tansu --version "${TANSU_VERSION}" --locked --features dynostore,libsql,postgres
fi

# rivven-schema: a Confluent-compatible Schema Registry (in memory) for the tests.
RIVVEN_VERSION=0.0.22
if ! cargo install --list | grep -q "^rivven-schema v${RIVVEN_VERSION}:"; then
  echo "setup: building rivven-schema ${RIVVEN_VERSION} (first time only)" >&2
  cargo install rivven-schema --version "${RIVVEN_VERSION}" --locked
fi

# Python confluent-kafka with its Schema Registry serializers, an independent client for
# interoperability tests, in .venv; reinstalled when the requirements change.
stamp=.venv/.requirements
if ! { [ -x .venv/bin/python ] && cmp -s tests/interop/requirements.txt "$stamp"; }; then
  echo "setup: installing Python test dependencies into .venv" >&2
  python3 -m venv .venv
  .venv/bin/pip install -q -r tests/interop/requirements.txt
  cp tests/interop/requirements.txt "$stamp"
fi
