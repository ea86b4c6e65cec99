"""Writes random ggml blocks and their dequantized values, as computed by gguf-py
(the GGUF reference package of llama.cpp), for kvant's tensor tests to compare against.

    python3 -m venv /tmp/ggufenv && /tmp/ggufenv/bin/pip install gguf==0.19.0
    /tmp/ggufenv/bin/python tools/kquant/ggml_reference.py \
        engine/src/test/resources/io/kvant/engine/tensor/ggml-reference-blocks.bin

Record per type, little-endian: u8 name length, name (ASCII), u32 byte count, block bytes,
u32 value count, float32 values. The fp16 scales are random of both signs (2^-12..2^0), every
other byte is uniformly random, so every code of every field occurs.
"""
import struct
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize

# type -> (blocks, byte offsets of the fp16 scale fields inside a block)
TYPES = {
    "Q5_0": (T.Q5_0, 8, [0]),
    "Q5_1": (T.Q5_1, 8, [0, 2]),
    "Q2_K": (T.Q2_K, 4, [80, 82]),
    "Q3_K": (T.Q3_K, 4, [108]),
    "Q4_K": (T.Q4_K, 4, [0, 2]),
    "Q5_K": (T.Q5_K, 4, [0, 2]),
    "Q6_K": (T.Q6_K, 4, [208]),
}
BLOCK_BYTES = {"Q5_0": 22, "Q5_1": 24, "Q2_K": 84, "Q3_K": 110, "Q4_K": 144, "Q5_K": 176, "Q6_K": 210}
BLOCK_SIZE = {"Q5_0": 32, "Q5_1": 32}


def main(out_path):
    rng = np.random.default_rng(20261203)
    out = bytearray()
    for name, (qtype, blocks, scale_offsets) in TYPES.items():
        bb = BLOCK_BYTES[name]
        raw = bytearray(rng.integers(0, 256, size=blocks * bb, dtype=np.uint8).tobytes())
        for b in range(blocks):
            for at in scale_offsets:
                mag = 2.0 ** rng.integers(-12, 0) * (1 + rng.random())
                val = mag if rng.random() < 0.5 else -mag
                raw[b * bb + at : b * bb + at + 2] = np.float16(val).tobytes()
        n = blocks * BLOCK_SIZE.get(name, 256)
        values = dequantize(np.frombuffer(bytes(raw), dtype=np.uint8), qtype).astype(np.float32)
        assert values.size == n, (name, values.size, n)
        out += struct.pack("<B", len(name)) + name.encode("ascii")
        out += struct.pack("<I", len(raw)) + raw
        out += struct.pack("<I", n) + values.astype("<f4").tobytes()
    with open(out_path, "wb") as f:
        f.write(out)
    print(f"wrote {out_path}: {len(out)} bytes")


if __name__ == "__main__":
    main(sys.argv[1])
