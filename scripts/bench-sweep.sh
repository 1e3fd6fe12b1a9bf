#!/usr/bin/env bash
# The pbft bench runs behind BENCHMARKS.md's sweep tables and plot. Each run
# starts a local cluster from configs/ (--local), loads it and stops it.
#
#   scripts/bench-sweep.sh [OUT_DIR]      (default: target/bench-sweep)
#
# Writes OUT_DIR/curve.jsonl (clients 1..256, n = 4 and n = 7),
# OUT_DIR/batches.jsonl (256 clients, batch limits 1/10/100/500),
# OUT_DIR/payloads.jsonl (64 clients, 32-byte and 1 KiB values) and
# docs/bench-throughput-latency.svg from the curve. About 7 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/bench-sweep}"
seconds="${BENCH_SECONDS:-5}"
mkdir -p "$out"
cargo build --release -p pbft-app
pbft="${CARGO_TARGET_DIR:-target}/release/pbft"
bench() { "$pbft" bench --local --duration "$seconds" --json "$@"; }

: > "$out/curve.jsonl"
for config in configs/local-4.toml configs/local-7.toml; do
    for clients in 1 2 4 8 16 32 64 128 256; do
        bench --config "$config" --clients "$clients" >> "$out/curve.jsonl"
    done
done

: > "$out/batches.jsonl"
for batch in 1 10 100 500; do
    bench --config configs/local-4.toml --clients 256 --protocol "max_batch_size=$batch" >> "$out/batches.jsonl"
done

: > "$out/payloads.jsonl"
for payload in 32 1024; do
    bench --config configs/local-4.toml --clients 64 --payload "$payload" >> "$out/payloads.jsonl"
done

"$pbft" bench --plot "$out/curve.jsonl" --svg docs/bench-throughput-latency.svg
echo "wrote $out/*.jsonl and docs/bench-throughput-latency.svg"
