#!/usr/bin/env bash
# Checks an OCI image archive from `-Pimage` without a container engine: unpacks its layers in
# order (as a runtime would), prints the config (user, entrypoint, ports), and starts the image's
# JVM inside the unpacked root, in a user namespace with its own /proc (what a runtime gives a
# container). Proves the base layer (glibc + jlinked runtime) is
# complete and the application class path resolves.
#
# usage: verify-image.sh [target/kvant-image.tar]
set -euo pipefail
tar_file="${1:-target/kvant-image.tar}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/oci" "$work/root"
tar --warning=no-unknown-keyword -xf "$tar_file" -C "$work/oci"
blob() { echo "$work/oci/blobs/sha256/${1#sha256:}"; }
manifest=$(blob "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$work/oci/index.json")")
config=$(blob "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["config"]["digest"])' "$manifest")")
for layer in $(python3 -c 'import json,sys; [print(l["digest"]) for l in json.load(open(sys.argv[1]))["layers"]]' "$manifest"); do
  tar --warning=no-unknown-keyword -xzf "$(blob "$layer")" -C "$work/root"
done
python3 - "$config" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))["config"]
print("user:", c.get("User")); print("entrypoint:", " ".join(c.get("Entrypoint", [])))
print("cmd:", " ".join(c.get("Cmd", []))); print("ports:", sorted(c.get("ExposedPorts", {})))
PY
user=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["config"]["User"])' "$config")
mkdir -p "$work/root/proc"
unshare -r -m -p -f --mount-proc="$work/root/proc" \
  chroot "$work/root" /opt/java/bin/java --add-modules jdk.incubator.vector \
  -cp @/app/jib-classpath-file -XshowSettings:properties -version 2>&1 \
  | grep -E 'java.runtime.version|java.home|java.class.path|version "'
echo "class path entries: $(tr ':' '\n' < "$work/root/app/jib-classpath-file" | wc -l)"
echo "image user: $user"
