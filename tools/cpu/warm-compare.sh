#!/usr/bin/env bash
# kvant against llama.cpp on the same GGUF files in the warm state (perf/RESULTS.md, "warm
# comparison"): kvant `bench batch --concurrency 1,1,1,1` (four levels of one sequence, each 16
# warm-up then N timed steps from position 0; levels 3 and 4 are the warm ones) and `llama-bench
# -p 0 -n N -d 16 -r 3`, back to back per file and thread count, ROUNDS rounds with the order
# swapped each round. One tab-separated line per measurement on stdout.
#
#   LLAMA_BENCH=/path/to/llama-bench tools/cpu/warm-compare.sh "smol-q8.gguf:128 l1b-q8.gguf:32" "1 2" 2
set -euo pipefail
specs=$1; threads=$2; rounds=${3:-2}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
llama=${LLAMA_BENCH:?set LLAMA_BENCH to a llama-bench binary}
kvant_run() { # file tokens threads -> "level3 level4"
  "$root/kvant" bench batch --model "$1" --concurrency 1,1,1,1 --tokens "$2" --warmup 16 \
    --threads "$3" 2>&1 | awk '$1 == "1" && NF == 4 {n++; if (n >= 3) printf "%s ", $2}'
}
llama_run() { # file tokens threads -> tok/s
  "$llama" -m "$1" -t "$3" -p 0 -n "$2" -d 16 -r 3 -o csv 2>/dev/null \
    | awk -F, 'NR == 1 {for (i = 1; i <= NF; i++) if ($i ~ /avg_ts/) c = i} NR > 1 {gsub(/"/, "", $c); print $c}'
}
for r in $(seq 1 "$rounds"); do
  for spec in $specs; do
    f=${spec%%:*}; n=${spec##*:}
    for t in $threads; do
      if (( r % 2 == 1 )); then
        k=$(kvant_run "$f" "$n" "$t"); l=$(llama_run "$f" "$n" "$t")
      else
        l=$(llama_run "$f" "$n" "$t"); k=$(kvant_run "$f" "$n" "$t")
      fi
      printf '%s\t%s\t%s\tround %s\tkvant %s\tllama.cpp %s\tload %s\n' "$(date -u +%H:%M:%S)" \
        "$(basename "$f")" "$t" "$r" "$k" "$l" "$(cut -d' ' -f1 /proc/loadavg)"
    done
  done
done
