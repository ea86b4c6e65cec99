#!/usr/bin/env bash
# Assembles the base layer of the kvant image as a plain directory, without a container engine or
# registry (neither is reachable here): a jlinked Java runtime, glibc from Debian's libc6 package
# (the only native library a jlinked runtime without java.desktop needs), and a passwd/group pair
# so the non-root user has a name. Jib (`-Pimage` in charts/pom.xml) puts this directory under
# the application layers of a `FROM scratch` OCI image.
#
# usage: build-rootfs.sh OUT_DIR [LIBC6_DEB]
#   OUT_DIR    the directory to fill (emptied first)
#   LIBC6_DEB  a libc6_*_amd64.deb to use; without it `apt-get download libc6` fetches the
#              build host's candidate (Debian 12: glibc 2.36), so the image's glibc is pinned by
#              the Debian release, not by whatever the host happens to have installed.
set -euo pipefail
out="$1"
deb="${2:-}"
java_home="${JAVA_HOME:?set JAVA_HOME to a JDK 25}"

# Modules the server's dependencies use: Netty (jdk.unsupported, java.management, java.naming),
# Jackson (java.sql for date types, java.xml), the AWS SDK (java.xml, java.naming, java.net.http),
# OpenTelemetry (java.management, jdk.management), TLS (jdk.crypto.ec, java.security.jgss), and the
# Vector API the engine's kernels run on (jdk.incubator.vector).
modules=java.base,java.logging,java.management,jdk.management,java.naming,java.net.http
modules+=,java.security.jgss,java.sql,java.xml,jdk.crypto.ec,jdk.unsupported,jdk.incubator.vector

rm -rf "$out"
mkdir -p "$out/opt" "$out/lib/x86_64-linux-gnu" "$out/lib64" "$out/etc" "$out/tmp"
# JDK 25 links from its own run-time image (JEP 493) when it ships no jmods, as Temurin 25 does.
"$java_home/bin/jlink" --add-modules "$modules" --strip-debug --no-header-files --no-man-pages \
  --compress=zip-6 --output "$out/opt/java" 2> >(grep -v 'incubator modules' >&2)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if [[ -z "$deb" ]]; then
  (cd "$work" && apt-get download libc6 >/dev/null 2>&1)
  deb="$(ls "$work"/libc6_*_amd64.deb)"
fi
dpkg-deb -x "$deb" "$work/libc6"
# Only what `ldd` lists for bin/java, libjvm.so and the runtime's own .so files; copied as files,
# because Jib copies files and the loader is looked up at /lib64 (the ELF interpreter path).
for lib in ld-linux-x86-64.so.2 libc.so.6 libdl.so.2 libm.so.6 libpthread.so.0 librt.so.1; do
  cp "$work/libc6/lib/x86_64-linux-gnu/$lib" "$out/lib/x86_64-linux-gnu/$lib"
done
cp "$out/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" "$out/lib64/ld-linux-x86-64.so.2"

# Any library the runtime needs that is not in the image fails the build here, not at pod start.
missing=$(find "$out/opt/java" -name '*.so' -o -path '*/bin/*' -type f | xargs -r ldd 2>/dev/null \
  | awk '/=>/ {print $1}' | sort -u | while read -r l; do
      [[ -e "$out/lib/x86_64-linux-gnu/$l" || -e "$out/opt/java/lib/$l" \
         || -e "$out/opt/java/lib/server/$l" ]] || echo "$l"; done)
if [[ -n "$missing" ]]; then
  echo "build-rootfs: the runtime needs libraries the image lacks: $missing" >&2
  exit 1
fi

# UID/GID 65532 is the usual "nonroot" id of distroless images; the chart runs as it too.
printf 'root:x:0:0:root:/root:/sbin/nologin\nkvant:x:65532:65532:kvant:/tmp:/sbin/nologin\n' \
  > "$out/etc/passwd"
printf 'root:x:0:\nkvant:x:65532:\n' > "$out/etc/group"
