#!/usr/bin/env bash
# Measured throughput against the crypto ceiling, both taken on this machine
# at the same moment. This VM's speed drifts by a quarter within an hour, so a
# ceiling measured in one spell and a throughput in another say little; here
# every round measures the ceiling, then the cluster, then the ceiling again,
# and divides the throughput by the mean of the two ceilings around it.
#
#   scripts/bench-ratio.sh [ROUNDS] [--clients C] [-- EXTRA BENCH ARGS]
#
# Default: 5 rounds of n = 4 (configs/local-4.toml), 256 closed-loop
# clients, 32-byte values, 5 s. 256 workers fill every request slot of the
# config (16 client identities x 16 pending requests each); throughput still
# rises up to there (BENCHMARKS.md), so this is near what the cluster can
# carry, at a latency BENCHMARKS.md gives. Prints one line per round and
# the median ratio; appends each round as a JSON line to
# target/bench-ratio/rounds.jsonl. About 30 s per round.
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: $0 [ROUNDS] [--clients C] [-- EXTRA BENCH ARGS]"
rounds=5
clients=256
if [[ "${1:-}" =~ ^[0-9]+$ ]]; then
    rounds="$1"
    shift
fi
if [[ "${1:-}" == "--clients" ]]; then
    [[ "${2:-}" =~ ^[0-9]+$ ]] || { echo "$usage" >&2; exit 2; }
    clients="$2"
    shift 2
fi
if [[ "${1:-}" == "--" ]]; then
    shift
elif [[ $# -gt 0 ]]; then
    echo "$usage" >&2
    exit 2
fi
[[ "$rounds" -ge 1 ]] || { echo "ROUNDS must be at least 1" >&2; exit 2; }
cargo build --release -p pbft-app
pbft="${CARGO_TARGET_DIR:-target}/release/pbft"
out=target/bench-ratio
mkdir -p "$out"

# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
ceiling() { "$pbft" bench --ceiling --replicas 4 --json | field ceiling_ops_per_sec; }

ratios=()
for round in $(seq 1 "$rounds"); do
    before="$(ceiling)"
    run="$("$pbft" bench --config configs/local-4.toml --local --clients "$clients" --duration 5 --json "$@" 2>/dev/null)"
    after="$(ceiling)"
    measured="$(field ops_per_sec <<<"$run")"
    ratio="$(awk -v m="$measured" -v b="$before" -v a="$after" 'BEGIN { printf "%.3f", 2 * m / (b + a) }')"
    ratios+=("$ratio")
    printf 'round %d: ceiling %.0f then %.0f ops/s, measured %.0f ops/s: %.1f %% of the ceiling\n' \
        "$round" "$before" "$after" "$measured" "$(awk -v r="$ratio" 'BEGIN { print 100 * r }')"
    echo "{\"round\":$round,\"clients\":$clients,\"ceiling_before\":$before,\"ceiling_after\":$after,\"measured\":$measured,\"ratio\":$ratio}" \
        >> "$out/rounds.jsonl"
done
median="$(printf '%s\n' "${ratios[@]}" | median)"
echo "median over $rounds rounds: $(awk -v r="$median" 'BEGIN { printf "%.1f", 100 * r }') % of the ceiling"
