#!/usr/bin/env bash
# The test command (README.md, and what CI runs): formatting, lints, then every unit,
# integration and property test against real redis-server instances the tests start.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-redis.sh
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --all-targets --locked
