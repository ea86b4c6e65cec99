#!/usr/bin/env bash
# CPU decode, kvant (float and integer kernels) next to llama.cpp, on the same synthetic GGUF files
# and threads, on the GPU host's CPU (issue 18). That host has no network and no Java: everything
# travels in .device/ (ignored by git), as for tools/gpu/run.sh.
#
# Here (development machine):
#   LLAMA_SRC=/path/to/llama.cpp tools/gpu/cpu-bench.sh pack
#       .device/cpu-bench/: the perf, engine and quant jars with the few libraries `bench synth`,
#       `bench decode`, `bench batch` and JMH need (~6 MB), and llama.cpp's sources as
#       llama-src.tar.xz (6.2 MB for the v0.5.0 tree in node-llama-cpp 3.22.1: no .git, no top-level
#       models/ docs/ media/ benches/, no web UI); .device/jdk.tar.xz is jlinked if missing (same
#       command as tools/gpu/pack.sh). The tree perf/RESULTS.md compares with is llama.cpp c392e50;
#       from a git mirror of it (its models/ holds large files a partial mirror may lack):
#         git -C MIRROR archive c392e50 $(git -C MIRROR ls-tree --name-only c392e50 |
#           grep -vxE 'models|media|docs') | tar -x -C /tmp/nlc/llama.cpp
# There (GPU host, from the checkout with .device/ carried along; each step is meant to fit the
# device tool's 10 minutes; not yet run there):
#   tools/gpu/cpu-bench.sh prepare        build llama-bench + llama-batched-bench (CPU only,
#                                         -DGGML_NATIVE=ON) and write the four GGUF files (~2.3 GB)
#   tools/gpu/cpu-bench.sh decode 1 4     single-stream decode at these thread counts, one table
#   tools/gpu/cpu-bench.sh decode 8 16
#   tools/gpu/cpu-bench.sh batch 16       16 sequences, kvant bench batch vs llama-batched-bench
#   tools/gpu/cpu-bench.sh jmh            IntMatmulBench: each kernel, integer vs float, 1 thread,
#                                         min and median time per call
#   tools/gpu/cpu-bench.sh ab 8 16        kvant's integer decode with .device/cpu-bench/base/'s jars
#                                         (an earlier engine, put there by hand) against the pack's,
#                                         alternated AB_ROUNDS times (default 2; base runs first
#                                         in odd rounds, new in even ones); writes the GGUF
#                                         files it needs, builds no llama.cpp; AB_BASE and AB_NEW
#                                         name other folders of .device/cpu-bench/ for either side
#   tools/gpu/cpu-bench.sh probe          one-row packed products alone (tools/cpu/PackedProbe, one
#                                         thread, 24 random matrices in turn): GB/s of the last four
#                                         passes for each engine jar in PROBE_JARS (folders of
#                                         .device/cpu-bench/, default "base lib"), with the codes on
#                                         small pages and in CodeSlabs (huge pages, as a model's);
#                                         PROBE_TYPE (default Q8_0), PROBE_SHAPES (ROWSxCOLSxCOUNT,
#                                         default "8192x2048x24 49152x576x12": ~400 MB, past L3)
# Environment: FILES (default all four: "smol-q8 smol-q4 l1b-q8 l1b-q4"), FLOAT (off: skip kvant's
# float column), TOKENS (default 64; 1B files use TOKENS/4), REPS (llama-bench -r, default 3), MIB
# (bandwidth arrays, default 1024), BATCH_FILES (default "l1b-q4 smol-q4"), WARMUP (kvant's
# warm-up tokens, or batch's warm-up steps per level, before timing; default the timed count but at
# least 128: a shorter one timed code
# the JIT had not finished compiling, perf/RESULTS.md sessions 9 and 25; the 1B files' 16-token
# warm-up gave 34.0 tok/s at two threads where 64 and 128 gave 44.2 and 44.6).
# Work files (JDK, llama.cpp build, GGUF files) live under /tmp/kvant-cpu-bench, so later calls on a
# warm machine reuse them (a fresh machine needs prepare again); results go to $OUT when set, else
# .device/results.
#
# Prints one row per (file, threads): kvant float tokens/s, kvant int tokens/s, llama.cpp tokens/s,
# int/llama.cpp. A row's three figures are measured back to back, so their ratios are from one run.
set -euo pipefail
ROOT="${KVANT_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
PACK="$ROOT/.device"
BENCH_PACK="$PACK/cpu-bench"
WORK=${WORK:-/tmp/kvant-cpu-bench}
TOKENS=${TOKENS:-64}
REPS=${REPS:-3}
WHAT="${1:-}"
shift || true

usage() {
  sed -n '2,50p' "$0" >&2
  exit 2
}

pack() {
  export JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
  [[ -n "${LLAMA_SRC:-}" && -f "$LLAMA_SRC/ggml/CMakeLists.txt" ]] ||
    { echo "LLAMA_SRC must name a llama.cpp source tree (ggml/CMakeLists.txt missing)" >&2; exit 2; }
  cd "$ROOT"
  rm -rf "$BENCH_PACK" && mkdir -p "$BENCH_PACK/lib"
  ./mvnw -q -B -DskipTests -Dspotless.check.skip=true package -pl perf -am
  # Only what the CPU benchmarks load: not gRPC, Netty or the chart library.
  # engine-cuda too: `bench decode --device` links it (a CPU-only host only loads its classes).
  cp perf/target/kvant-perf-*[0-9T].jar engine/target/kvant-engine-*[0-9T].jar \
    engine-cuda/target/kvant-engine-cuda-*[0-9T].jar quant/target/kvant-quant-*[0-9T].jar \
    "$BENCH_PACK/lib/"
  # PackedProbe compiled here: the jlinked JDK has no compiler for the source launcher.
  mkdir -p "$BENCH_PACK/probe"
  "$JAVA_HOME/bin/javac" --add-modules jdk.incubator.vector -nowarn -d "$BENCH_PACK/probe" \
    -cp "$BENCH_PACK/lib/$(basename engine/target/kvant-engine-*[0-9T].jar)" tools/cpu/PackedProbe.java
  tr ':' '\n' < perf/target/classpath.txt |
    grep -E '/(jackson-(core|databind|annotations)|jmh-core|jopt-simple|commons-math3)-[^/]*\.jar$' |
    xargs -I{} cp {} "$BENCH_PACK/lib/"
  # Top-level folders only: newer trees keep model sources in src/models, which the build needs
  # (not the top-level models/ of vocabulary files). No git metadata, no web UI, no benches.
  local name
  name=$(basename "$LLAMA_SRC")
  tar -C "$(dirname "$LLAMA_SRC")" --exclude=.git --anchored --exclude="$name/build" \
    --exclude="$name/models" --exclude="$name/docs" --exclude="$name/media" \
    --exclude="$name/benches" --exclude="$name/tools/ui" --exclude="$name/examples/llama.swiftui" \
    -cJf "$BENCH_PACK/llama-src.tar.xz" "$name"
  if [[ ! -f "$PACK/jdk.tar.xz" ]]; then
    rm -rf "$PACK/jdk"
    "$JAVA_HOME/bin/jlink" --add-modules \
      java.base,jdk.incubator.vector,java.logging,java.management,jdk.unsupported,java.naming,java.net.http,java.xml,jdk.crypto.ec,jdk.management,jdk.zipfs \
      --strip-debug --no-man-pages --no-header-files --compress=zip-9 --output "$PACK/jdk"
    tar -C "$PACK" -cJf "$PACK/jdk.tar.xz" jdk
    rm -rf "$PACK/jdk"
  fi
  du -sh "$BENCH_PACK"/* "$PACK/jdk.tar.xz" | sed 's|^|pack: |'
}

[[ "$WHAT" == pack ]] && { pack; exit 0; }
[[ "$WHAT" =~ ^(prepare|decode|batch|jmh|ab|probe)$ ]] || usage

RESULTS="${OUT:-$PACK/results}"
mkdir -p "$RESULTS" "$WORK"
LOG="$RESULTS/cpu-bench-$WHAT.log"
JDK="$WORK/jdk"
if [[ ! -x "$JDK/bin/java" ]]; then
  mkdir -p "$JDK" && tar -xJf "$PACK/jdk.tar.xz" -C "$JDK" --strip-components=1
fi
JAVA=("$JDK/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED)
CP="$BENCH_PACK/lib/*"
kvant() { "${JAVA[@]}" -Xmx24g -XX:+UseParallelGC -cp "$CP" io.kvant.perf.BenchMain bench "$@"; }
LLAMA="$WORK/llama"
# The CPU's vector features and what the JVM makes of them: on some Xeons HotSpot defaults to
# UseAVX=2 (256-bit vectors), which halves the Vector API's lanes against AVX-512 hosts.
{ echo "== $(date -u +%FT%TZ) $WHAT $*"; lscpu | grep -E '^(Model name|CPU\(s\)|Model:|Stepping|Thread\(s\) per core|Core\(s\) per socket|Socket\(s\)|NUMA node)';
  lscpu | sed -n 's/^Flags: *//p' | tr ' ' '\n' | grep -E '^(avx|amx|fma)' | tr '\n' ' '; echo;
  "$JDK/bin/java" -XX:+PrintFlagsFinal -version 2>/dev/null | grep -E ' (UseAVX|MaxVectorSize|UseSuperWord) ';
  "$JDK/bin/java" -version 2>&1 | head -1; } >> "$LOG"

declare -A SPEC=(
  [smol-q8]="smollm2-135m Q8_0" [smol-q4]="smollm2-135m Q4_0"
  [l1b-q8]="llama-3.2-1b Q8_0" [l1b-q4]="llama-3.2-1b Q4_0")
ORDER=${FILES:-"smol-q8 smol-q4 l1b-q8 l1b-q4"}

prepare() {
  if [[ ! -x "$LLAMA/build/bin/llama-bench" ]]; then
    if command -v cmake > /dev/null; then
      rm -rf "$LLAMA" && mkdir -p "$LLAMA"
      tar -xJf "$BENCH_PACK/llama-src.tar.xz" -C "$LLAMA" --strip-components=1
      mkdir -p "$LLAMA/models"
      echo "building llama.cpp in $LLAMA/build ..." | tee -a "$LOG"
      cmake -S "$LLAMA" -B "$LLAMA/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
        -DLLAMA_CURL=OFF -DGGML_OPENMP=ON -DGGML_CUDA=OFF -DLLAMA_BUILD_TESTS=OFF \
        -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_OPENSSL=OFF >> "$LOG" 2>&1
      cmake --build "$LLAMA/build" -j "$(nproc)" --target llama-bench llama-batched-bench >> "$LOG" 2>&1
    else
      echo "no cmake on this host: llama.cpp columns will be empty" | tee -a "$LOG"
    fi
  fi
  for name in $ORDER; do
    read -r shape type <<< "${SPEC[$name]}"
    if [[ ! -f "$WORK/$name.gguf" ]]; then
      echo "writing $WORK/$name.gguf ..." | tee -a "$LOG"
      kvant synth --shape "$shape" --weights "$type" --out "$WORK/$name.gguf" >> "$LOG" 2>&1
    fi
  done
  kvant bandwidth --mib "${MIB:-1024}" --trials 3 --threads "$(nproc)" 2>&1 | tee -a "$LOG" |
    tee "$WORK/bandwidth.txt" > "$RESULTS/bandwidth.txt"
  cat "$RESULTS/bandwidth.txt"
}

# tokens/s of `kvant bench decode`; BW (the read bandwidth prepare measured) only sets its "bound"
# line, so the bench skips its own probe
BW=$(sed -n 's/^read *[0-9.]* *\([0-9.]*\).*/\1/p' "$WORK/bandwidth.txt" 2>/dev/null | tail -1 || true)
BW=${BW:-1}
kvant_tps() {
  local file=$1 threads=$2 kernels=$3 tokens=$4
  timeout 120 "${JAVA[@]}" -Xmx24g -XX:+UseParallelGC -cp "${KVANT_CP:-$CP}" io.kvant.perf.BenchMain bench decode \
    --model "$file" --tokens "$tokens" --warmup "${WARMUP:-$((tokens > 128 ? tokens : 128))}" --threads "$threads" \
    --kernels "$kernels" --bandwidth-gbs "$BW" 2>> "$LOG" | tee -a "$LOG" | sed -n 's/^decode .* \([0-9.]*\) tokens\/s.*/\1/p' | head -1
}
# mean tokens/s of llama-bench text generation (-p 0 -n N)
llama_tps() {
  local file=$1 threads=$2 tokens=$3
  [[ -x "$LLAMA/build/bin/llama-bench" ]] || { echo "-"; return; }
  timeout 120 "$LLAMA/build/bin/llama-bench" -m "$file" -t "$threads" -p 0 -n "$tokens" -r "$REPS" \
    -o csv 2>> "$LOG" | tee -a "$LOG" | tail -1 | awk -F, '{gsub(/"/, "", $(NF-1)); printf "%.2f\n", $(NF-1)}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "-" }'; }

decode() {
  local threads=("${@:-1 4 8 16}")
  printf '%-8s %7s %12s %12s %12s %9s %9s\n' file threads kvant-float kvant-int llama.cpp \
    int/float int/llama | tee -a "$RESULTS/decode.txt"
  for name in $ORDER; do
    [[ -f "$WORK/$name.gguf" ]] || { echo "$WORK/$name.gguf missing: run prepare first" >&2; exit 1; }
    local tokens=$TOKENS
    [[ $name == l1b-* ]] && tokens=$((TOKENS / 4 > 8 ? TOKENS / 4 : 8))
    for t in ${threads[@]}; do
      f=
      [[ ${FLOAT:-on} == on ]] && f=$(kvant_tps "$WORK/$name.gguf" "$t" float "$tokens")
      i=$(kvant_tps "$WORK/$name.gguf" "$t" int "$tokens")
      l=$(llama_tps "$WORK/$name.gguf" "$t" "$tokens")
      printf '%-8s %7s %12s %12s %12s %9s %9s\n' "$name" "$t" "${f:--}" "${i:--}" "${l:--}" \
        "$(ratio "$i" "$f")" "$(ratio "$i" "$l")" | tee -a "$RESULTS/decode.txt"
    done
  done
}

batch() {
  # WARMUP (default 128) warm-up steps per level: with 4, the four-row integer kernel was still
  # being compiled at 16 sequences (C1 code of the Vector API is boxed and slow) and measured 3x too
  # slow; with 16 (until session 32) SmolLM2 Q4_0 at 16 sequences on two threads measured 350 tok/s
  # where 128 gave 592. FLOAT=off skips the float kernels' run.
  local seqs=${1:-16} t kinds=(float int)
  t=$(nproc)
  [[ ${FLOAT:-on} == off ]] && kinds=(int)
  for name in ${BATCH_FILES:-l1b-q4 smol-q4}; do
    for k in "${kinds[@]}"; do
      echo "== kvant bench batch $name --kernels $k --threads $t" | tee -a "$RESULTS/batch.txt"
      timeout 200 "${JAVA[@]}" -Xmx24g -XX:+UseParallelGC -cp "$CP" io.kvant.perf.BenchMain bench \
        batch --model "$WORK/$name.gguf" --concurrency "1,$seqs" --tokens 16 --warmup "${WARMUP:-128}" \
        --threads "$t" --kernels "$k" 2>&1 | tee -a "$RESULTS/batch.txt"
    done
    if [[ -x "$LLAMA/build/bin/llama-batched-bench" ]]; then
      echo "== llama-batched-bench $name -npl $seqs -t $t" | tee -a "$RESULTS/batch.txt"
      timeout 200 "$LLAMA/build/bin/llama-batched-bench" -m "$WORK/$name.gguf" -c 4096 -b 2048 \
        -ub 512 -npp 128 -ntg 16 -npl "1,$seqs" -t "$t" 2>> "$LOG" | tee -a "$RESULTS/batch.txt"
    fi
  done
}

jmh() {
  # Sample mode: the minimum (p0.00) and median (p0.50) call times, which a shared machine's noise
  # disturbs less than the mean.
  timeout 560 "${JAVA[@]}" -cp "$CP" org.openjdk.jmh.Main IntMatmulBench -f 1 -wi 3 -i 8 -w 500ms \
    -r 500ms -bm sample -tu us 2>&1 | tee "$RESULTS/jmh.txt" | grep -E '^(Benchmark|IntMatmulBench)'
}

ab() {
  local threads=("${@:-8 16}") name shape type t round side tps
  local baseDir=${AB_BASE:-base} newDir=${AB_NEW:-}
  [[ -d "$BENCH_PACK/$baseDir" ]] || { echo "$BENCH_PACK/$baseDir/ missing: the base jars go there" >&2; exit 2; }
  [[ -z $newDir || -d "$BENCH_PACK/$newDir" ]] || { echo "$BENCH_PACK/$newDir/ missing" >&2; exit 2; }
  echo "base: $baseDir/, new: ${newDir:-lib}/" | tee -a "$RESULTS/ab.txt"
  printf '%-8s %7s %6s %10s %10s\n' file threads round base new | tee -a "$RESULTS/ab.txt"
  for name in $ORDER; do
    read -r shape type <<< "${SPEC[$name]}"
    [[ -f "$WORK/$name.gguf" ]] ||
      kvant synth --shape "$shape" --weights "$type" --out "$WORK/$name.gguf" >> "$LOG" 2>&1
    local tokens=$TOKENS
    [[ $name == l1b-* ]] && tokens=$((TOKENS / 4 > 8 ? TOKENS / 4 : 8))
    for t in ${threads[@]}; do
      for ((round = 1; round <= ${AB_ROUNDS:-2}; round++)); do
        declare -A got=()
        # odd rounds base first, even rounds new first: on a machine whose load drifts, a fixed
        # order favours one side (session 37's 1B rows)
        local sides="base new"
        ((round % 2 == 0)) && sides="new base"
        for side in $sides; do
          KVANT_CP="$CP"
          [[ $side == base ]] && KVANT_CP="$BENCH_PACK/$baseDir/*:$CP"
          [[ $side == new && -n $newDir ]] && KVANT_CP="$BENCH_PACK/$newDir/*:$CP"
          got[$side]=$(KVANT_CP=$KVANT_CP kvant_tps "$WORK/$name.gguf" "$t" int "$tokens")
        done
        printf '%-8s %7s %6s %10s %10s\n' "$name" "$t" "$round" "${got[base]:--}" "${got[new]:--}" |
          tee -a "$RESULTS/ab.txt"
      done
    done
  done
}

probe() {
  local dir pages shape rows cols count
  for shape in ${PROBE_SHAPES:-8192x2048x24 49152x576x12}; do
    read -r rows cols count <<< "${shape//x/ }"
    for dir in ${PROBE_JARS:-base lib}; do
      for pages in small slabs; do
        printf '%-6s %-6s %s %-14s ' "$dir" "$pages" "${PROBE_TYPE:-Q8_0}" "$shape" | tee -a "$RESULTS/probe.txt"
        timeout 60 "${JAVA[@]}" -Xmx3g -cp "$BENCH_PACK/probe:$BENCH_PACK/$dir/$(basename "$BENCH_PACK"/lib/kvant-engine-*.jar)" \
          PackedProbe "${PROBE_TYPE:-Q8_0}" "$rows" "$cols" "$count" 1 1 1.2 \
          $([[ $pages == slabs ]] && echo slabs) 2>> "$LOG" | grep -v BEST | grep 'GB/s' | tail -4 |
          awk '{printf "%s ", $(NF-1)} END {print "GB/s"}' | tee -a "$RESULTS/probe.txt" || true
      done
    done
  done
}

case "$WHAT" in
  ab) ab "$@" ;;
  probe) probe ;;
  prepare) prepare ;;
  decode) decode "$@" ;;
  batch) batch "$@" ;;
  jmh) jmh ;;
esac
echo "(log: $LOG; load: $(cut -d' ' -f1-3 /proc/loadavg))"
