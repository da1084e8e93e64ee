#!/usr/bin/env bash
# The whole test suite: installs what it needs, then format, lints, unit, broker-free and
# real-broker (tansu) tests, CLI tests and interoperability tests with Python confluent-kafka.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
export PATH="$HOME/.cargo/bin:$PATH"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
