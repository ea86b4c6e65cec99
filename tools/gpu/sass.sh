#!/usr/bin/env bash
# SASS of kvant.cu's kernels on this machine, without a GPU: how many instructions a kernel's inner
# loop issues per chunk and how many registers it takes, to compare two versions of a kernel before
# spending device time on them.
#
#   tools/gpu/sass.sh [KERNEL...]            # default: the staged one-row products
#   SRC=/path/to/other/kvant.cu tools/gpu/sass.sh mq4_k16s4_plain
#
# Prints, for each kernel, ptxas's register count and every loop that holds an mma (HMMA) with its
# instruction count; the SASS itself is left in $WORK/<kernel>.sass.
#
# How, and what it is worth: the development machine has nvcc 13 but no disassembler, and the
# device machine's cuobjdump costs device time. nvcc 13 compiles kvant.cu to an sm_90 cubin (with
# ptxas -v's register counts: the same ptxas generation as the NVRTC 13 that compiles kvant.cu at
# run time there); Debian's non-free nvidia-cuda-toolkit 11.8 supplies cuobjdump, downloaded once
# (84 MB .deb, apt's own download with a private sources list and state; nothing is installed or
# changed system-wide) and unpacked under $WORK. cuobjdump 11.8 does not know CUDA 12's ELF header
# (e_flags 0x6005a04, ABI version 8), so the script writes the CUDA 11 form of an sm_90 header
# (0x5a055a, version 7) into a copy: the instructions themselves are the same ISA. Checked: main's
# mq4_k16s4_plain loop comes out at 116 instructions here, session 18's cuobjdump on the device
# counted about 112 (NVRTC's and nvcc's flags differ slightly); compare versions with each other.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SRC="${SRC:-$ROOT/engine-cuda/src/main/resources/io/kvant/cuda/kernels/kvant.cu}"
WORK="${WORK:-/tmp/kvant-sass}"
if [[ $# -gt 0 ]]; then
  KERNELS=("$@")
else
  KERNELS=(mq4_k16s4_plain mq4_k16s4_norm mq4_k16s4_swiglu_norm mq8e_k16s4_norm
    mq8e_k16s4_swiglu_norm)
fi
TK="$WORK/toolkit/usr/bin"
command -v nvcc > /dev/null || { echo "sass.sh: nvcc not found (the cubin comes from the local nvcc)" >&2; exit 2; }
[[ -f "$SRC" ]] || { echo "sass.sh: $SRC: no such file" >&2; exit 2; }
mkdir -p "$WORK"

if [[ ! -x "$TK/cuobjdump" ]]; then
  apt_dir="$WORK/apt"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial"
  printf '%s\n' "Types: deb" "URIs: http://deb.debian.org/debian" "Suites: bookworm" \
    "Components: non-free" "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" \
    > "$apt_dir/nonfree.sources"
  apt_opts=(-o "Dir::Etc::sourcelist=$apt_dir/nonfree.sources" -o "Dir::Etc::sourceparts=-"
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache::Archives=$apt_dir/archives"
    -o "APT::Sandbox::User=root")
  echo "sass.sh: fetching Debian's nvidia-cuda-toolkit (11.8) for cuobjdump ..." >&2
  apt-get "${apt_opts[@]}" update > "$apt_dir/update.log" 2>&1 ||
    { echo "sass.sh: apt-get update failed, see $apt_dir/update.log" >&2; exit 1; }
  (cd "$apt_dir" && apt-get "${apt_opts[@]}" download nvidia-cuda-toolkit > download.log 2>&1) ||
    { echo "sass.sh: apt-get download failed, see $apt_dir/download.log" >&2; exit 1; }
  dpkg -x "$apt_dir"/nvidia-cuda-toolkit_*.deb "$WORK/toolkit"
fi

nvcc -arch=sm_90 -cubin -std=c++17 -Xptxas -v -o "$WORK/kvant.cubin" "$SRC" > "$WORK/ptxas.log" 2>&1 ||
  { cat "$WORK/ptxas.log" >&2; exit 1; }
python3 "$ROOT/tools/gpu/sass_loops.py" --cuda11-header "$WORK/kvant.cubin" "$WORK/kvant-cuda11.cubin"
for k in "${KERNELS[@]}"; do
  "$TK/cuobjdump" -sass -fun "$k" "$WORK/kvant-cuda11.cubin" > "$WORK/$k.sass"
  regs=$(grep -A4 "Compiling entry function '$k'" "$WORK/ptxas.log" | grep -o 'Used [0-9]* registers' | head -1 || true)
  printf '%s (%s): ' "$k" "${regs:-registers ?}"
  python3 "$ROOT/tools/gpu/sass_loops.py" "$WORK/$k.sass"
done
