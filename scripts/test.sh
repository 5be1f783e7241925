#!/usr/bin/env bash
# The test command (README.md, and what CI runs): formatting, lints (with and without the
# default `lab` feature), the code's docs (warnings denied), the product build without the lab, every unit, integration and
# property test against real redis-server instances the tests start (and the archive's against
# the machine's PostgreSQL, scripts/ensure-postgres.sh), every benchmark script at
# a tiny size on the debug build (scripts/bench-smoke.sh, about two and a half minutes), the agent and
# admin API fuzzed against its own OpenAPI document (scripts/api-fuzz.sh: schemathesis,
# skipped where it cannot be installed), then `helm lint` and `helm template` of the chart, and promtool on its
# alerting rules and dashboard queries. tests/console.rs (the agent console) and
# tests/wallboard_browser.rs (the wallboard on the demo stack; its screenshot is kept as
# target/tmp/wallboard.png) drive Debian's headless Chromium through chromedriver
# (scripts/ensure-browser.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
# the whole run builds about 4 GB into target/ (Cargo.toml's [profile.dev] keeps it there); say so
# up front when the disk is short, rather than as rustc's "No space left on device" half an hour in
free_kb=$(df -Pk . | awk 'NR == 2 { print $4 }')
if [ "${free_kb:-0}" -lt $((5 * 1024 * 1024)) ]; then
  echo "warning: $((free_kb / 1024)) MB free on $(df -P . | awk 'NR == 2 { print $6 }'); the test build needs about 4 GB" >&2
fi
scripts/ensure-redis.sh
scripts/ensure-postgres.sh
scripts/ensure-browser.sh
scripts/ensure-jq.sh
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
# the product alone, without the lab (simulator, demo, bench): what the Dockerfile builds
cargo build --no-default-features --locked
cargo clippy --all-targets --no-default-features --locked -- -D warnings
# the code's own docs, whose links must resolve (they link private items: maintainers' docs)
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --lib --document-private-items --locked
cargo test --all-targets --locked
# every benchmark script starts, measures and exits 0 (tiny sizes, the debug build above)
scripts/bench-smoke.sh
# the API against its OpenAPI document: no 5xx, no undocumented status (about a minute)
scripts/api-fuzz.sh
# the Helm chart, linted and rendered by a real helm binary; its alerts and dashboard checked
scripts/helm-check.sh
# what a CI run keeps besides its log: the browser tests' screenshots
for shot in target/tmp/*.png; do
  if [ -f "$shot" ]; then echo "artifact: $shot ($(wc -c < "$shot") bytes)"; fi
done
