#!/usr/bin/env bash
# Builds the training corpus for kvant's self-trained model from Debian packages.
#
#   tools/train/prepare_corpus.sh [OUTDIR]      (default OUTDIR: tools/train/corpus)
#
# Needs: apt-get (with package lists; run `apt-get update` first if it cannot find the
# packages), dpkg, python3, and an x86-64 (amd64) host with libreadline8, because the KJV
# text ships compressed in bible-kjv-text's own format and is decoded by the `bible`
# program of the bible-kjv package (both are extracted with dpkg -x; nothing is installed).
#
# Output (all plain UTF-8):
#   train.txt    one verse per line, a blank line between chapters
#   valid.txt    every 50th chapter (chapter index % 50 == 35), used to pick the checkpoint
#   heldout.txt  every 50th chapter (chapter index % 50 == 10), only used for the reported
#                held-out perplexity
#   LICENSE.txt  Debian's copyright file of bible-kjv-text (the KJV text is public domain)
#   SOURCE.txt   package names, versions and sha256 of the .deb files used
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/corpus}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

mkdir -p "$out"
cd "$work"
apt-get download bible-kjv-text bible-kjv 2>&1 | grep -v '^W: Download is performed unsandboxed' || true
txt_deb=$(ls bible-kjv-text_*_all.deb)
prog_deb=$(ls bible-kjv_*.deb)
dpkg -x "$txt_deb" text
dpkg -x "$prog_deb" prog

{
  echo "Corpus: King James Version of the Bible (1611 translation, Debian package bible-kjv-text)"
  for d in "$txt_deb" "$prog_deb"; do
    echo "$(dpkg-deb -f "$d" Package) $(dpkg-deb -f "$d" Version) $(sha256sum "$d" | cut -d' ' -f1)  $d"
  done
  echo "Decoded with: prog/usr/bin/bible -p text/usr/lib -f -l 100000 gen1:1-rev22:21"
} >"$out/SOURCE.txt"
cp text/usr/share/doc/bible-kjv-text/copyright "$out/LICENSE.txt"

# -f turns pretty-printing off: one verse per line, "Ge1:1 In the beginning ...".
# -l 100000 keeps every verse on one line.
prog/usr/bin/bible -p text/usr/lib -f -l 100000 'gen1:1-rev22:21' >verses.txt

python3 - verses.txt "$out" <<'PY'
import re, sys, unicodedata
src, out = sys.argv[1], sys.argv[2]
ref = re.compile(r"^([1-3]?[A-Za-z]+)(\d+):(\d+) (.*)$")
chapters, key = [], None
with open(src, encoding="utf-8") as f:
    for line in f:
        line = line.rstrip("\n")
        if not line.strip():
            continue
        m = ref.match(line)
        if not m:
            raise SystemExit(f"unexpected line: {line!r}")
        book, chap, text = m.group(1), m.group(2), m.group(4)
        # Plain text: NFC, single spaces, no control characters.
        text = unicodedata.normalize("NFC", text)
        text = re.sub(r"\s+", " ", text).strip()
        if (book, chap) != key:
            chapters.append([])
            key = (book, chap)
        chapters[-1].append(text)
if len(chapters) != 1189:
    raise SystemExit(f"expected 1189 chapters, got {len(chapters)}")
split = {"train": [], "valid": [], "heldout": []}
for i, ch in enumerate(chapters):
    name = "heldout" if i % 50 == 10 else "valid" if i % 50 == 35 else "train"
    split[name].append(ch)
for name, chs in split.items():
    with open(f"{out}/{name}.txt", "w", encoding="utf-8", newline="\n") as f:
        f.write("\n\n".join("\n".join(ch) for ch in chs) + "\n")
    n_chars = sum(len(" ".join(ch)) + 1 for ch in chs)
    print(f"{name}: {len(chs)} chapters, {sum(map(len, chs))} verses, {n_chars} characters")
PY
echo "corpus written to $out"
