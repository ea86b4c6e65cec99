// What kvant.cu's RoPE, KV append and attention kernels use beyond shim.h and mq_shim.h, as host
// C++: register shuffles from any lane and warp barriers (shim.h's per-warp exchange), read-only
// loads as plain loads, the _rn arithmetic intrinsics as IEEE float operations (g++ in ISO mode
// contracts nothing into FMAs), F16 conversions through _Float16 (round to nearest even, as
// cvt.rn.f16.f32).
#pragma once
#include "mq_shim.h"

typedef unsigned short u16;
typedef unsigned long long u64;

#define __constant__

template <class T>
T __shfl_sync(unsigned, T v, int src) {
  return emu_exchange(v, src & 31);
}
inline void __syncwarp(unsigned = 0xffffffffu) {
  emuWarps[threadIdx.x >> 5].sync.arrive_and_wait();
}
template <class T>
T __ldg(const T* p) {
  return *p;
}
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }

inline float f16_to_f32(u16 h) {
  _Float16 f;
  std::memcpy(&f, &h, 2);
  return (float)f;
}
inline u16 f32_to_f16(float x) {
  _Float16 f = (_Float16)x;
  u16 h;
  std::memcpy(&h, &f, 2);
  return h;
}

// A decode step's row inputs as the RoPE/append/attention emulator tests write them after their
// headers: each row's sequence and position, the block tables (rows x maxBlocks), RoPE's cosine
// and sine tables (tablePositions x headSize / 2), then q (rows x heads x headSize), k and v
// (rows x kvHeads x headSize).
struct EmuDecodeRows {
  std::vector<int> rowSeq, positions, tables;
  std::vector<float> cosT, sinT, q, k, v;
};

inline EmuDecodeRows emu_read_decode_rows(FILE* in, int rows, int maxBlocks, int tablePositions,
                                          int heads, int kvHeads, int headSize) {
  EmuDecodeRows d;
  d.rowSeq.resize(rows);
  d.positions.resize(rows);
  d.tables.resize((size_t)rows * maxBlocks);
  emu_read_all(in, d.rowSeq.data(), rows, "rowSeq");
  emu_read_all(in, d.positions.data(), rows, "positions");
  emu_read_all(in, d.tables.data(), d.tables.size(), "tables");
  const size_t half = (size_t)tablePositions * (headSize / 2);
  d.cosT.resize(half);
  d.sinT.resize(half);
  emu_read_all(in, d.cosT.data(), half, "cos");
  emu_read_all(in, d.sinT.data(), half, "sin");
  const size_t kn = (size_t)rows * kvHeads * headSize;
  d.q.resize((size_t)rows * heads * headSize);
  d.k.resize(kn);
  d.v.resize(kn);
  emu_read_all(in, d.q.data(), d.q.size(), "q");
  emu_read_all(in, d.k.data(), kn, "k");
  emu_read_all(in, d.v.data(), kn, "v");
  return d;
}
