#!/usr/bin/env bash
# CPU decode, kvant next to llama.cpp, on the same synthetic GGUF files, at several thread counts,
# in one run (issue 18). Made for the GPU machine's 16-core host, which has no network and no Java.
#
# usage: perf/gpu-host-cpu-bench.sh JARS_DIR JDK_DIR LLAMA_SRC_DIR [WORK_DIR] [THREADS]
#   JARS_DIR       kvant-perf-*.jar and its runtime dependencies (see "Jars" below)
#   JDK_DIR        a JDK 25 (or a jlinked image with jdk.incubator.vector), e.g. ./jdk
#   LLAMA_SRC_DIR  llama.cpp source tree (no models/ needed); built here into LLAMA_SRC_DIR/build
#   WORK_DIR       where the synthetic GGUF files go (default /tmp/kvant-cpu-bench, ~2.3 GB)
#   THREADS        thread counts (default "1 4 8 16")
# Environment: TOKENS (default 64; 1B models use TOKENS/4), REPS (llama-bench -r, default 3).
#
# Jars (on the development machine):
#   ./mvnw -q -pl perf -am package -DskipTests
#   mkdir -p /tmp/kvant-jars && cp perf/target/kvant-perf-*[0-9T].jar $(tr ':' ' ' < perf/target/classpath.txt) /tmp/kvant-jars/
#
# Prints one table: model, threads, kvant float kernels, kvant int kernels, llama.cpp (tokens/s),
# and int/llama.cpp. Everything for one model runs back to back, so ratios are from one run.
set -euo pipefail
if [[ $# -lt 3 ]]; then
  sed -n '4,12p' "$0" >&2
  exit 2
fi
JARS=$(cd "$1" && pwd)
JDK=$(cd "$2" && pwd)
LLAMA=$(cd "$3" && pwd)
WORK=${4:-/tmp/kvant-cpu-bench}
THREADS=${5:-"1 4 8 16"}
TOKENS=${TOKENS:-64}
REPS=${REPS:-3}
JAVA="$JDK/bin/java"
mkdir -p "$WORK"
LOG="$WORK/run.log"
: > "$LOG"

"$JAVA" -version 2>&1 | head -1 >> "$LOG"
if [[ ! -x "$LLAMA/build/bin/llama-bench" ]]; then
  echo "building llama.cpp (CPU only) in $LLAMA/build ..." >&2
  mkdir -p "$LLAMA/models"
  cmake -S "$LLAMA" -B "$LLAMA/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    -DLLAMA_CURL=OFF -DGGML_OPENMP=ON -DGGML_CUDA=OFF >> "$LOG" 2>&1
  cmake --build "$LLAMA/build" -j "$(nproc)" --target llama-bench >> "$LOG" 2>&1
fi
LLAMA_BENCH="$LLAMA/build/bin/llama-bench"

kvant() {
  "$JAVA" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
    -XX:+UseParallelGC -cp "$JARS/*" io.kvant.perf.BenchMain bench "$@"
}

declare -A FILES=(
  [smol-q8]="smollm2-135m Q8_0" [smol-q4]="smollm2-135m Q4_0"
  [l1b-q8]="llama-3.2-1b Q8_0" [l1b-q4]="llama-3.2-1b Q4_0")
ORDER="smol-q8 smol-q4 l1b-q8 l1b-q4"
for name in $ORDER; do
  read -r shape type <<< "${FILES[$name]}"
  if [[ ! -f "$WORK/$name.gguf" ]]; then
    echo "writing $WORK/$name.gguf ..." >&2
    kvant synth --shape "$shape" --weights "$type" --out "$WORK/$name.gguf" >> "$LOG" 2>&1
  fi
done

# tokens/s of `kvant bench decode`
kvant_tps() {
  local file=$1 threads=$2 kernels=$3 tokens=$4
  kvant decode --model "$file" --tokens "$tokens" --warmup $((tokens / 4 + 2)) \
    --threads "$threads" --kernels "$kernels" --bandwidth-gbs 1 2>> "$LOG" | tee -a "$LOG" |
    sed -n 's/.*= \([0-9.]*\) tokens\/s.*/\1/p'
}
# average tokens/s of llama-bench text generation (-p 0 -n N)
llama_tps() {
  local file=$1 threads=$2 tokens=$3
  "$LLAMA_BENCH" -m "$file" -t "$threads" -p 0 -n "$tokens" -r "$REPS" -o csv 2>> "$LOG" |
    tee -a "$LOG" | tail -1 | awk -F, '{gsub(/"/, "", $(NF-1)); print $(NF-1)}'
}

printf '%-10s %7s %12s %12s %12s %10s\n' model threads kvant-float kvant-int llama.cpp int/llama
for name in $ORDER; do
  tokens=$TOKENS
  [[ $name == l1b-* ]] && tokens=$((TOKENS / 4 > 8 ? TOKENS / 4 : 8))
  for t in $THREADS; do
    f=$(kvant_tps "$WORK/$name.gguf" "$t" float "$tokens")
    i=$(kvant_tps "$WORK/$name.gguf" "$t" int "$tokens")
    l=$(llama_tps "$WORK/$name.gguf" "$t" "$tokens")
    ratio=$(awk -v a="$i" -v b="$l" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
    printf '%-10s %7s %12s %12s %12s %10s\n' "$name" "$t" "$f" "$i" "$l" "$ratio"
  done
done
echo "(full output in $LOG; load: $(cut -d' ' -f1-3 /proc/loadavg))"
