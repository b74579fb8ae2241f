#!/usr/bin/env bash
# Prints the comparison table (recfile vs MCAP vs the raw limit) in a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release --example compare "$@"
