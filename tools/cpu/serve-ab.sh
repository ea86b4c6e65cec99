#!/usr/bin/env bash
# One `bench serve` run (1 and 16 concurrent streams by default) against a server whose engine is
# the given jar (first on the class path), as `./kvant serve` starts it (512 MiB heap, ParallelGC,
# 2 compute threads). Alternate two jars to compare them on a shared machine (issue 18):
#   for i in 1 2 3; do p=0; for j in /tmp/a.jar /tmp/b.jar; do p=$((p+1)); sleep 2
#     tools/cpu/serve-ab.sh $j 506$i$p /tmp/r-$(basename $j)-$i; done; done
# (a port per run: reusing one right after the previous server exits made a run fail to start)
# Needs server/ and perf/ built (./mvnw -B -o -q install -pl server,perf -am -DskipTests).
# Environment: CONC (default 1,16), REQS (requests per level, default 256: with 64 the 16-stream
# level lasted ~2.5 s, warm-up and tails included, and read 2.3-2.9x where 256 read 3.5-3.6x,
# perf/RESULTS.md session 12), SERVER_OPTS (extra JVM
# options for the server, e.g. a JFR recording), SERVE_ARGS (extra serve flags, e.g. `--weights w8`),
# PROMPT_LEN (bench serve's --prompt-len, default uniform:8:32 words), BENCH_ARGS (extra bench
# serve flags, e.g. `--temperature 0.8 --top-p 0.9` for sampled requests), CLIENT_ENV (a command
# prefix for the load generator, e.g.
# `env JAVA_TOOL_OPTIONS=-XX:StartFlightRecording=filename=/tmp/client.jfr`).
# Prints the output tokens/s of each level.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
JAVA="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}/bin/java"
ENGINE=$1 PORT=$2 OUT=$3
TOKEN="$OUT.admin.token"
echo "ab-$RANDOM$RANDOM" > "$TOKEN"
KVANT_HOME="$ROOT" "$JAVA" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
  -XX:+UseParallelGC -Xmx512m ${SERVER_OPTS:-} \
  -cp "$ENGINE:$ROOT/server/target/kvant-server-0.1.0-SNAPSHOT.jar:$(cat "$ROOT/server/target/classpath.txt")" \
  io.kvant.server.cli.Main serve --port "$PORT" --metrics-port 0 --threads 2 \
  --admin-token-file "$TOKEN" ${SERVE_ARGS:-} > "$OUT.server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do grep -q "warm and serving" "$OUT.server.log" && break; sleep 0.5; done
(cd "$ROOT" && ${CLIENT_ENV:-} ./kvant bench serve --target "127.0.0.1:$PORT" --concurrency "${CONC:-1,16}" \
  --requests "${REQS:-256}" --warmup 8 --prompt-len "${PROMPT_LEN:-uniform:8:32}" --output-len fixed:64 \
  --out "$OUT.json" ${BENCH_ARGS:-}) > "$OUT.bench.log" 2>&1 || true
grep "Output token throughput" "$OUT.bench.log" | awk '{print $NF}' | tr '\n' ' '
echo
