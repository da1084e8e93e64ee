#!/usr/bin/env bash
# Installs what StreamLake needs, reusing whatever is already there.
#   scripts/setup.sh          system libraries to build (cmake, OpenSSL, zstd, zlib, curl headers, pkg-config)
#   scripts/setup.sh --test   also what the tests use: the tansu and crabka brokers (and the
#                             crabka tool that formats a crabka cluster), the
#                             rivven-schema registry, Python confluent-kafka and promtool
set -euo pipefail
cd "$(dirname "$0")/.."

# libcurl4-openssl-dev: librdkafka 2.12 includes curl.h even when built without curl.
APT_PACKAGES=(cmake pkg-config libssl-dev libzstd-dev zlib1g-dev libcurl4-openssl-dev)
# Only for the tests: prometheus for its promtool, which checks deploy/prometheus; curl fetches
# the crabka crates.
APT_TEST_PACKAGES=(prometheus curl)
TANSU_VERSION=0.6.0

sudo=""
[ "$(id -u)" -ne 0 ] && sudo=sudo

# apt_install [APT-GET OPTION…] PACKAGE…: installs the packages not installed yet and leaves
# their names in `installed`.
apt_install() {
  local opts=() p
  installed=()
  while [[ "${1:-}" == -* ]]; do opts+=("$1"); shift; done
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || installed+=("$p")
  done
  ((${#installed[@]})) || return 0
  echo "setup: installing ${installed[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${opts[@]}" "${installed[@]}" >/dev/null
}

apt_install "${APT_PACKAGES[@]}"

[ "${1:-}" = "--test" ] || exit 0

# Only promtool is wanted from the prometheus package: no recommended exporters, and the
# Prometheus server that the package enables is stopped and disabled right after installing.
apt_install --no-install-recommends "${APT_TEST_PACKAGES[@]}"
if [[ " ${installed[*]} " == *" prometheus "* ]]; then
  if [ -d /run/systemd/system ]; then
    $sudo systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  elif [ -x /etc/init.d/prometheus ]; then
    $sudo /etc/init.d/prometheus stop >/dev/null 2>&1 || true
  fi
fi

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

# crabka-broker: a second independently written Kafka-compatible broker, for the transaction
# tests (tansu 0.6.0 has no EndTxn) and the three-broker cluster (scripts/cluster.sh), with
# crabka-cli, whose `crabka format` sets up that cluster's controller quorum. Their 0.3.0
# releases on crates.io are yanked, so `cargo install` refuses them by name; a yanked crate
# still builds from a lockfile, so each is built from its published .crate, checked against the
# checksum crates.io lists for it, with the lockfile it was published with. Both build in one
# target folder, so the dependencies they share (all of crabka-cli's) compile once.
CRABKA_VERSION=0.3.0
CRABKA_TARGET="${XDG_CACHE_HOME:-$HOME/.cache}/streamlake/crabka-target"
install_crabka() { # install_crabka CRATE SHA256
  local src
  cargo install --list | grep -q "^$1 v${CRABKA_VERSION} " && return 0
  echo "setup: building $1 ${CRABKA_VERSION} (first time only)" >&2
  src=$(mktemp -d)
  curl -fsSL -o "$src/$1.crate" "https://static.crates.io/crates/$1/$1-${CRABKA_VERSION}.crate"
  echo "$2  $src/$1.crate" | sha256sum --check --quiet
  tar -xzf "$src/$1.crate" -C "$src"
  CARGO_TARGET_DIR="$CRABKA_TARGET" cargo install --locked --path "$src/$1-${CRABKA_VERSION}"
  rm -rf "$src"
}
install_crabka crabka-broker 554e4628d62fa805fc5f410c901c749b5ac253fabdaf474b94cee974c5342602
install_crabka crabka-cli 9ba10bcbe9a6f5d7ae2266d1d2e78f889b191b52d05805fc76761888cc72e322

# Python confluent-kafka with its Schema Registry serializers, an independent client for
# interoperability tests, in .venv; reinstalled when the requirements change.
stamp=.venv/.requirements
if ! { [ -x .venv/bin/python ] && cmp -s tests/interop/requirements.txt "$stamp"; }; then
  echo "setup: installing Python test dependencies into .venv" >&2
  python3 -m venv .venv
  .venv/bin/pip install -q -r tests/interop/requirements.txt
  cp tests/interop/requirements.txt "$stamp"
fi
