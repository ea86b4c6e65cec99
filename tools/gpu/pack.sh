#!/usr/bin/env bash
# Packs what a GPU host needs to run kvant's GPU tests, benchmarks and server into .device/ (ignored
# by git): a jlinked JDK 25 as tar.xz (the GPU host has no Java), kvant's module and test jars, their
# dependencies (repacked uncompressed and xz'd together: a third of their size as jars, so the pack
# stays under the device tool's 64 MiB), the JUnit console launcher, and the shared test models.
# Then run tools/gpu/run.sh on the GPU host from a copy of the checkout that includes .device/.
#
#   tools/gpu/pack.sh            # build and pack (the JDK is jlinked once and kept)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PACK="$ROOT/.device"
export JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
cd "$ROOT"

mkdir -p "$PACK"
rm -rf "$PACK/lib" "$PACK/deps.tar.xz" && mkdir -p "$PACK/lib"
STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT

# kvant's jars, the GPU tests (engine-cuda) and the server's end-to-end tests (the hot swap on the
# GPU), and every dependency they and the perf module (bench serve, bench synth) need.
mvn_q=(./mvnw -q -B -Dspotless.check.skip=true)
"${mvn_q[@]}" -DskipTests install -pl engine-cuda,server,perf -am
for m in engine-cuda:test server:test perf:runtime; do
  "${mvn_q[@]}" dependency:copy-dependencies -pl "${m%%:*}" -DincludeScope="${m##*:}" \
    -DoutputDirectory="$STAGE/deps"
done
rm -f "$STAGE"/deps/kvant-*.jar "$STAGE"/deps/*-sources.jar
# Not needed on the GPU host, and the device tool takes 64 MiB with the checkout: the AWS SDK (the
# GPU runs use a folder bucket), Mockito's byte-buddy, OkHttp/Kotlin (OTLP export, off there),
# jqwik and xchart (property tests and charts run here), the OpenAI/langchain4j clients and jtokkit
# (the HTTP API's client tests run here), grpc-netty-shaded (the client finds
# grpc-netty's channel provider through the same ServiceLoader).
( cd "$STAGE/deps" && ls | grep -E '^(byte-buddy|mockito|objenesis|kotlin|okhttp|okio|jqwik|xchart|grpc-netty-shaded|openai-java|langchain4j|jtokkit)|-2\.57\.[0-9]+\.jar$' | xargs -r rm -f )
for m in proto engine quant engine-cuda reload-agent server client-sdk perf; do
  cp "$m"/target/kvant-"$m"-*.jar "$PACK/lib/"
done
rm -f "$PACK"/lib/*-sources.jar "$PACK"/lib/*-javadoc.jar
"$JAVA_HOME/bin/jar" cf "$PACK/lib/kvant-server-tests.jar" -C server/target/test-classes .
"${mvn_q[@]}" dependency:copy -Dartifact=org.junit.platform:junit-platform-console-standalone:6.1.3 \
  -DoutputDirectory="$PACK/lib"

# Dependencies: stored (uncompressed) jars compress across files far better under xz.
python3 - "$STAGE/deps" <<'PY'
import glob, os, sys, zipfile
for p in glob.glob(os.path.join(sys.argv[1], "*.jar")):
    with zipfile.ZipFile(p) as src:
        items = [(i, src.read(i.filename)) for i in src.infolist()]
    with zipfile.ZipFile(p + ".tmp", "w", zipfile.ZIP_STORED) as z:
        for i, data in items:
            i.compress_type = zipfile.ZIP_STORED
            z.writestr(i, data)
    os.replace(p + ".tmp", p)
PY
tar -C "$STAGE" -cf - deps | xz -T0 -6 > "$PACK/deps.tar.xz"

# The JDK: java.base and what kvant uses, without debug symbols (about 26 MB as xz).
if [[ ! -f "$PACK/jdk.tar.xz" ]]; then
  rm -rf "$PACK/jdk"
  "$JAVA_HOME/bin/jlink" --add-modules \
    java.base,jdk.incubator.vector,java.logging,java.management,jdk.unsupported,java.naming,java.net.http,java.xml,jdk.crypto.ec,jdk.management,jdk.zipfs,java.sql,jdk.httpserver \
    --strip-debug --no-man-pages --no-header-files --compress=zip-0 --output "$PACK/jdk"
  tar -C "$PACK" -cJf "$PACK/jdk.tar.xz" jdk
  rm -rf "$PACK/jdk"
fi

# The real models the GPU tests compare on (the checkout's shared/ does not travel).
rm -rf "$PACK/models" && mkdir -p "$PACK/models"
cp -r "$ROOT/../shared/models/stories260K" "$ROOT/../shared/models/tinystories-656k" "$PACK/models/"

# The run script and its helpers, so a checkout that predates them can run this pack
# (bash .device/run.sh ...: run from the pack, it takes the pack's parent as the checkout).
cp tools/gpu/run.sh tools/gpu/ncu_summary.py tools/gpu/ncu_source.py tools/gpu/peer_gemv.py "$PACK/"

du -sh "$PACK"/* | sed 's|^|pack: |'
du -sh "$PACK" | sed 's|^|pack total: |'
