#!/usr/bin/env bash
# Packs what a GPU host needs to run kvant's GPU tests and benchmarks into .device/ (ignored by
# git): a jlinked JDK 25 as tar.xz (the GPU host has no Java), the module jars and test jars with
# their dependencies, the JUnit console launcher, and the shared test models. Then run
# tools/gpu/run.sh on the GPU host from a copy of the checkout that includes .device/.
#
#   tools/gpu/pack.sh            # build and pack (the JDK is jlinked once and kept)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PACK="$ROOT/.device"
export JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
cd "$ROOT"

mkdir -p "$PACK"
rm -rf "$PACK/lib" && mkdir -p "$PACK/lib"

# Modules, test jars and every dependency (test scope) of engine-cuda and of the server.
./mvnw -q -B -DskipTests -Dspotless.check.skip=true package -pl engine-cuda,server -am
./mvnw -q -B -Dspotless.check.skip=true dependency:copy-dependencies -pl engine-cuda \
  -DincludeScope=test -DoutputDirectory="$PACK/lib"
./mvnw -q -B -Dspotless.check.skip=true dependency:copy-dependencies -pl server \
  -DincludeScope=runtime -DoutputDirectory="$PACK/lib"
cp engine-cuda/target/kvant-engine-cuda-*.jar server/target/kvant-server-*.jar "$PACK/lib/"
rm -f "$PACK"/lib/*-sources.jar
./mvnw -q -B dependency:copy -Dartifact=org.junit.platform:junit-platform-console-standalone:6.1.3 \
  -DoutputDirectory="$PACK/lib"

# The JDK: java.base and what kvant uses, without debug symbols (about 26 MB as xz).
if [[ ! -f "$PACK/jdk.tar.xz" ]]; then
  rm -rf "$PACK/jdk"
  "$JAVA_HOME/bin/jlink" --add-modules \
    java.base,jdk.incubator.vector,java.logging,java.management,jdk.unsupported,java.naming,java.net.http,java.xml,jdk.crypto.ec,jdk.management,jdk.zipfs \
    --strip-debug --no-man-pages --no-header-files --compress=zip-9 --output "$PACK/jdk"
  tar -C "$PACK" -cJf "$PACK/jdk.tar.xz" jdk
  rm -rf "$PACK/jdk"
fi

# The real models the GPU tests compare on (the checkout's shared/ does not travel).
rm -rf "$PACK/models" && mkdir -p "$PACK/models"
cp -r "$ROOT/../shared/models/stories260K" "$ROOT/../shared/models/tinystories-656k" "$PACK/models/"

du -sh "$PACK"/* | sed 's|^|pack: |'
