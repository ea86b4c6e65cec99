"""Helpers of tools/gpu/sass.sh.

    python3 tools/gpu/sass_loops.py KERNEL.sass
        The loops of one kernel's SASS (cuobjdump -sass) that hold an mma: each backward branch
        whose body has an HMMA, with the body's instruction count.
    python3 tools/gpu/sass_loops.py --cuda11-header IN.cubin OUT.cubin
        A copy of a CUDA 12/13 sm_90 cubin with the CUDA 11 form of its ELF header, which CUDA
        11.8's cuobjdump reads (the instructions are unchanged).
"""
import re
import struct
import sys


def loops(path):
    ins = []
    with open(path) as f:
        for line in f:
            m = re.match(r"\s*/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;", line)
            if m:
                ins.append((int(m.group(1), 16), m.group(2)))
    found = []
    for i, (a, text) in enumerate(ins):
        m = re.search(r"BRA (0x[0-9a-f]+)", text)
        if not m:
            continue
        target = int(m.group(1), 16)
        if target < a:
            # the first instruction at or after the target: cuobjdump does not always print the
            # target's own line in the one-line form parsed above
            start = next(j for j, (b, _) in enumerate(ins) if b >= target)
            body = ins[start:i + 1]
            mmas = sum("HMMA" in t for _, t in body)
            if mmas:
                found.append(f"loop {target:#x}-{a:#x} {len(body)} instructions, {mmas} HMMA")
    print("; ".join(found) if found else "no loop with an mma", f"({len(ins)} instructions in all)")


def cuda11_header(src, dst):
    with open(src, "rb") as f:
        b = bytearray(f.read())
    if b[:4] != b"\x7fELF" or b[4] != 2:
        sys.exit(f"{src}: not a 64-bit ELF file")
    flags = struct.unpack_from("<I", b, 48)[0]
    if (flags >> 8) & 0xFF != 0x5A and flags & 0xFF != 0x5A:
        sys.exit(f"{src}: not an sm_90 cubin (e_flags {flags:#x})")
    b[7], b[8] = 33, 7  # OS/ABI and ABI version of a CUDA 11 cubin
    struct.pack_into("<I", b, 48, 0x5A055A)  # e_flags: sm_90 in the CUDA 11 layout
    with open(dst, "wb") as f:
        f.write(b)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--cuda11-header":
        cuda11_header(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 2:
        loops(sys.argv[1])
    else:
        sys.exit(__doc__)
