#!/usr/bin/env bash
# Compares commits on one machine, the way BENCHMARKS.md's lever table was
# measured: builds `pbft` at each commit (in a temporary git worktree), then
# runs the same loads with each binary in turn, several rounds, so that a
# noisy machine affects every commit alike.
#
#   scripts/bench-compare.sh [--rounds R] [--load "BENCH ARGS"]... REV [REV ...]
#
# Each run appends one JSON line, with the commit added as "rev", to
# target/bench-compare/runs.jsonl and is printed too. The default loads:
# n = 4 (configs/local-4.toml, metrics off) closed loop with 64 clients for
# 5 s, and open loop at 1,000 ops/s for
# 6 s (about 15 s per commit per round, plus the builds). Each --load
# replaces them with a load of your own, given as `pbft bench` arguments
# (e.g. --load "--clients 64 --duration 5 --payload 1024").
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: $0 [--rounds R] [--load \"BENCH ARGS\"]... REV [REV ...]"
rounds=3
loads=()
while [[ "${1:-}" == --* ]]; do
    [[ $# -ge 2 ]] || { echo "$usage" >&2; exit 2; }
    case "$1" in
        --rounds) rounds="$2" ;;
        --load) loads+=("$2") ;;
        *) echo "$usage" >&2; exit 2 ;;
    esac
    shift 2
done
[[ $# -ge 1 ]] || { echo "$usage" >&2; exit 2; }
[[ ${#loads[@]} -gt 0 ]] || loads=("--clients 64 --duration 5" "--rate 1000 --duration 6")

out=target/bench-compare
mkdir -p "$out/bin"
worktree="$(mktemp -d)"
results="$(mktemp)"
trap 'rm -f "$results"; git worktree remove --force "$worktree" >/dev/null 2>&1 || true' EXIT
git worktree add --detach "$worktree" HEAD >/dev/null
for rev in "$@"; do
    git -C "$worktree" checkout --quiet --detach "$rev"
    CARGO_TARGET_DIR="$PWD/$out/target" cargo build --release -p pbft-app --manifest-path "$worktree/Cargo.toml"
    cp "$out/target/release/pbft" "$out/bin/pbft-$rev"
done

# Every commit runs the same config: configs/local-4.toml without its
# metrics addresses (commits before metrics refuse the field), with its key
# folder made absolute so that the copy finds it from the worktree (removed
# with it at exit).
config="$worktree/.bench-local-4.toml"
sed -e '/^metrics_address/d' -e "s|^keys_dir = \"\(.*\)\"|keys_dir = \"$PWD/configs/\1\"|" \
    configs/local-4.toml > "$config"

# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
# The sum of the replicas' CPU seconds per 1,000 operations.
replicas_cpu() {
    grep -o '"cpu_seconds_per_1000_ops": *\[[^]]*\]' | sed 's/.*\[//; s/\]//' |
        awk -F, '{ s = 0; for (i = 1; i <= NF; i++) s += $i; printf "%.3f", s }'
}

for round in $(seq 1 "$rounds"); do
    for rev in "$@"; do
        for load in "${loads[@]}"; do
            # shellcheck disable=SC2086
            line="$("$out/bin/pbft-$rev" bench --config "$config" --local $load --json 2>/dev/null)"
            echo "${line%\}},\"rev\":\"$rev\",\"round\":$round}" >> "$out/runs.jsonl"
            echo "round $round $rev $load: $line"
            printf '%s|%s|%s|%s|%s|%s\n' "$rev" "$load" "$(field ops_per_sec <<< "$line")" \
                "$(replicas_cpu <<< "$line")" "$(field p50 <<< "$line")" "$(field p99 <<< "$line")" >> "$results"
        done
    done
done

echo "medians over $rounds round(s):"
for load in "${loads[@]}"; do
    for rev in "$@"; do
        column() { awk -F'|' -v rev="$rev" -v load="$load" -v c="$1" '$1 == rev && $2 == load { print $c }' "$results" | median; }
        printf '  %s, %s: %.0f ops/s, replicas %s CPU s per 1,000 ops, p50 %s ms, p99 %s ms\n' \
            "$rev" "$load" "$(column 3)" "$(column 4)" "$(column 5)" "$(column 6)"
    done
done
