#!/usr/bin/env bash
# Compares commits on one machine, the way BENCHMARKS.md's lever table was
# measured: builds `pbft` at each commit (in a temporary git worktree), then
# runs the same loads with each binary in turn, several rounds, so that a
# noisy machine affects every commit alike.
#
#   scripts/bench-compare.sh [--rounds R] REV [REV ...]
#
# Each run appends one JSON line, with the commit added as "rev", to
# target/bench-compare/runs.jsonl and is printed too. The loads:
# n = 4 closed loop with 64 clients for 5 s, and open loop at 1,000 ops/s for
# 6 s. About 15 s per commit per round, plus the builds.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=3
if [[ "${1:-}" == "--rounds" ]]; then
    rounds="$2"
    shift 2
fi
[[ $# -ge 1 ]] || { echo "usage: $0 [--rounds R] REV [REV ...]" >&2; exit 2; }

out=target/bench-compare
mkdir -p "$out/bin"
worktree="$(mktemp -d)"
trap 'git worktree remove --force "$worktree" >/dev/null 2>&1 || true' EXIT
git worktree add --detach "$worktree" HEAD >/dev/null
for rev in "$@"; do
    git -C "$worktree" checkout --quiet --detach "$rev"
    CARGO_TARGET_DIR="$PWD/$out/target" cargo build --release -p pbft-app --manifest-path "$worktree/Cargo.toml"
    cp "$out/target/release/pbft" "$out/bin/pbft-$rev"
done

loads=("--clients 64 --duration 5" "--rate 1000 --duration 6")
for round in $(seq 1 "$rounds"); do
    for rev in "$@"; do
        for load in "${loads[@]}"; do
            # shellcheck disable=SC2086
            line="$("$out/bin/pbft-$rev" bench --config configs/local-4.toml --local $load --json 2>/dev/null)"
            echo "${line%\}},\"rev\":\"$rev\",\"round\":$round}" >> "$out/runs.jsonl"
            echo "round $round $rev $load: $line"
        done
    done
done
