#!/usr/bin/env bash
# Long kill -9 soak: 1000+ trials (about 2–4 minutes). Usage: tests/soak.sh [TRIALS]
set -euo pipefail
cd "$(dirname "$0")/.."
KILL9_TRIALS="${1:-1000}" cargo test --release --test kill9 -- --exact kill9_trials --nocapture
