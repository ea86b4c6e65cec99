"""A minimal GGUF v3 writer and reader (numpy only), written for kvant's tiny model.

Layout written (all little-endian):
  magic "GGUF", uint32 version = 3, uint64 tensor_count, uint64 kv_count,
  kv_count x (string key, uint32 value_type, value),
  tensor_count x (string name, uint32 n_dims, n_dims x uint64 ne (ne0 first), uint32 ggml_type,
                  uint64 offset relative to the data section),
  zero padding to `alignment`, then the tensor data, each tensor starting at a multiple of
  `alignment` (general.alignment, 32 unless the file says otherwise).
A string is a uint64 byte length followed by UTF-8 bytes (no terminator).
"""

import struct

import numpy as np

MAGIC = b"GGUF"
VERSION = 3
ALIGNMENT = 32

# Metadata value types.
T_UINT8, T_INT8, T_UINT16, T_INT16, T_UINT32, T_INT32, T_FLOAT32, T_BOOL = range(8)
T_STRING, T_ARRAY, T_UINT64, T_INT64, T_FLOAT64 = 8, 9, 10, 11, 12

_SCALAR = {
    T_UINT8: "<B", T_INT8: "<b", T_UINT16: "<H", T_INT16: "<h", T_UINT32: "<I",
    T_INT32: "<i", T_FLOAT32: "<f", T_BOOL: "<?", T_UINT64: "<Q", T_INT64: "<q",
    T_FLOAT64: "<d",
}

# ggml tensor types used here.
GGML_F32, GGML_F16 = 0, 1
_GGML_DTYPE = {GGML_F32: np.dtype("<f4"), GGML_F16: np.dtype("<f2")}


class Val:
    """A metadata value with an explicit GGUF type (arrays: elem_type set, value a list)."""

    def __init__(self, vtype, value, elem_type=None):
        self.vtype, self.value, self.elem_type = vtype, value, elem_type


def _pack_string(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def _pack_scalar(vtype, v):
    if vtype == T_STRING:
        return _pack_string(v)
    return struct.pack(_SCALAR[vtype], v)


def _pack_value(val):
    out = struct.pack("<I", val.vtype)
    if val.vtype == T_ARRAY:
        out += struct.pack("<IQ", val.elem_type, len(val.value))
        if val.elem_type == T_STRING:
            out += b"".join(_pack_string(s) for s in val.value)
        else:
            fmt = _SCALAR[val.elem_type]
            out += np.asarray(val.value, dtype=np.dtype(fmt)).tobytes()
    else:
        out += _pack_scalar(val.vtype, val.value)
    return out


def _pad(n):
    return (ALIGNMENT - n % ALIGNMENT) % ALIGNMENT


def write_gguf(path, metadata, tensors):
    """metadata: list of (key, Val); tensors: list of (name, np.ndarray, ggml_type).

    A numpy array of shape (d0, ..., dk) in C order is written with GGUF dims listed
    ne0-first, i.e. reversed: (dk, ..., d0). A torch Linear weight [out, in] becomes
    ne = [in, out] with its bytes unchanged.
    """
    header = MAGIC + struct.pack("<IQQ", VERSION, len(tensors), len(metadata))
    for key, val in metadata:
        header += _pack_string(key) + _pack_value(val)
    blobs, offset = [], 0
    for name, arr, gtype in tensors:
        data = np.ascontiguousarray(arr, dtype=_GGML_DTYPE[gtype]).tobytes()
        ne = list(reversed(arr.shape))
        header += _pack_string(name) + struct.pack("<I", len(ne))
        header += b"".join(struct.pack("<Q", d) for d in ne)
        header += struct.pack("<IQ", gtype, offset)
        blobs.append(data + b"\0" * _pad(len(data)))
        offset += len(blobs[-1])
    with open(path, "wb") as f:
        f.write(header + b"\0" * _pad(len(header)))
        for b in blobs:
            f.write(b)


class _Cursor:
    def __init__(self, buf):
        self.buf, self.pos = buf, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def string(self):
        n = self.take("<Q")
        s = bytes(self.buf[self.pos:self.pos + n]).decode("utf-8")
        self.pos += n
        return s

    def value(self, vtype):
        if vtype == T_STRING:
            return self.string()
        if vtype == T_ARRAY:
            etype, n = self.take("<I"), self.take("<Q")
            if etype == T_STRING:
                return [self.string() for _ in range(n)]
            dt = np.dtype(_SCALAR[etype])
            arr = np.frombuffer(self.buf, dtype=dt, count=n, offset=self.pos)
            self.pos += n * dt.itemsize
            return arr.tolist()
        return self.take(_SCALAR[vtype])


def read_gguf(path):
    """Returns (metadata dict, tensors dict name -> np.ndarray in C order, numpy shape = ne reversed)."""
    with open(path, "rb") as f:
        buf = f.read()
    c = _Cursor(buf)
    if buf[:4] != MAGIC:
        raise ValueError("not a GGUF file")
    c.pos = 4
    version, n_tensors, n_kv = c.take("<I"), c.take("<Q"), c.take("<Q")
    if version != 3:
        raise ValueError(f"GGUF version {version}")
    meta = {}
    for _ in range(n_kv):
        key = c.string()
        meta[key] = c.value(c.take("<I"))
    align = meta.get("general.alignment", ALIGNMENT)
    infos = []
    for _ in range(n_tensors):
        name = c.string()
        nd = c.take("<I")
        ne = [c.take("<Q") for _ in range(nd)]
        gtype, off = c.take("<I"), c.take("<Q")
        infos.append((name, ne, gtype, off))
    data_start = c.pos + (align - c.pos % align) % align
    tensors = {}
    for name, ne, gtype, off in infos:
        if off % align:
            raise ValueError(f"{name}: misaligned offset {off}")
        dt = _GGML_DTYPE[gtype]
        count = int(np.prod(ne))
        arr = np.frombuffer(buf, dtype=dt, count=count, offset=data_start + off)
        tensors[name] = arr.reshape(list(reversed(ne)))
    return meta, tensors
