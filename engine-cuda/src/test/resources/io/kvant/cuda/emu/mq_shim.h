// The instructions kvant.cu's tiled products reach through small helpers (inline PTX there), as
// host C++ for shim.h's threads: F16 pair arithmetic with one rounding each (done in double, then
// rounded: exact for these operands), mma.m16n8k16 as a warp-wide exchange of the fragments (the
// PTX ISA's ownership: A register i of lane (g, t) holds row g + 8 (i & 1), columns 2t, 2t + 1,
// + 8 for i >= 2; B register j holds k 2t, 2t + 1 (+ 8 for j = 1) of column g; C holds rows g and
// g + 8, columns 2t, 2t + 1), cp.async as a plain copy (so commit and wait have nothing to do).
// Sums inside the emulated mma are exact in double and rounded once into the F32 accumulator;
// the hardware's internal rounding differs, within the tests' tolerance.
#pragma once
#include "shim.h"

struct uint2 {
  unsigned x, y;
};
struct uint4 {
  unsigned x, y, z, w;
};
struct float4 {
  float x, y, z, w;
};
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return uint2{x, y}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) {
  return uint4{x, y, z, w};
}

#define __launch_bounds__(...)
#define __align__(n) alignas(n)

inline void pdl_launch_next() {}
inline void pdl_wait_previous() {}
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline float __ldcg(const float* p) { return *p; }

inline unsigned __byte_perm(unsigned x, unsigned y, unsigned s) {
  unsigned long long b = ((unsigned long long)y << 32) | x;
  unsigned r = 0;
  for (int i = 0; i < 4; i++) r |= (unsigned)((b >> (8 * ((s >> (4 * i)) & 7))) & 0xff) << (8 * i);
  return r;
}

inline double emu_h2d(unsigned bits16) {
  _Float16 h;
  unsigned short u = (unsigned short)bits16;
  std::memcpy(&h, &u, 2);
  return (double)h;
}
inline unsigned emu_d2h(double v) {
  _Float16 h = (_Float16)v;  // one rounding, to nearest even
  unsigned short u;
  std::memcpy(&u, &h, 2);
  return u;
}
template <class Op>
inline unsigned emu_h2(unsigned a, unsigned b, unsigned c, Op op) {
  unsigned lo = emu_d2h(op(emu_h2d(a & 0xffff), emu_h2d(b & 0xffff), emu_h2d(c & 0xffff)));
  unsigned hi = emu_d2h(op(emu_h2d(a >> 16), emu_h2d(b >> 16), emu_h2d(c >> 16)));
  return lo | (hi << 16);
}

inline unsigned mq_nib(unsigned w, unsigned mask) { return (w & mask) | 0x64006400u; }
inline unsigned mq_hsub2(unsigned a, unsigned b) {
  return emu_h2(a, b, 0, [](double x, double y, double) { return x - y; });
}
inline unsigned mq_hfma2(unsigned a, unsigned b, unsigned c) {
  return emu_h2(a, b, c, [](double x, double y, double z) { return x * y + z; });
}
inline unsigned mq_pack(float lo, float hi) {
  _Float16 l = (_Float16)lo, h = (_Float16)hi;
  unsigned short ul, uh;
  std::memcpy(&ul, &l, 2);
  std::memcpy(&uh, &h, 2);
  return ul | ((unsigned)uh << 16);
}

struct MmaSlots {
  unsigned a[32][4];
  unsigned b[32][2];
};
inline std::unique_ptr<MmaSlots[]> emuMma;

inline void mq_mma(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  WarpExchange& w = emuWarps[warp];
  MmaSlots& m = emuMma[warp];
  w.sync.arrive_and_wait();
  for (int i = 0; i < 4; i++) m.a[lane][i] = a[i];
  m.b[lane][0] = b0;
  m.b[lane][1] = b1;
  w.sync.arrive_and_wait();
  const int g = lane >> 2, t = lane & 3;
  for (int e = 0; e < 4; e++) {
    const int row = g + 8 * (e >> 1), col = 2 * t + (e & 1);
    double s = 0;
    for (int k = 0; k < 16; k++) {
      const unsigned av = m.a[(row & 7) * 4 + ((k & 7) >> 1)][(row >> 3) | ((k >> 3) << 1)];
      const unsigned bv = m.b[col * 4 + ((k & 7) >> 1)][k >> 3];
      s += emu_h2d((av >> (16 * (k & 1))) & 0xffff) * emu_h2d((bv >> (16 * (k & 1))) & 0xffff);
    }
    c[e] = (float)((double)c[e] + s);
  }
  w.sync.arrive_and_wait();
}

inline uint4 ld_stream16(const unsigned char* p) {
  uint4 v;
  std::memcpy(&v, p, 16);
  return v;
}
inline void cp_async16_zfill(void* smem, const void* gmem, int bytes) {
  if (bytes == 16) {
    std::memcpy(smem, gmem, 16);
  } else {
    std::memset(smem, 0, 16);
  }
}
inline void prefetch_l2(const void*) {}
inline void cp_async_commit() {}
template <int N>
inline void cp_async_wait() {}

/** The block's dynamic shared memory (one block runs at a time). */
template <class T>
T* emu_dynamic_shared() {
  alignas(16) static unsigned char area[256 << 10];
  return (T*)area;
}

inline void emu_mq_block_start(unsigned threads) {
  emuMma = std::make_unique<MmaSlots[]>(threads / 32);
}
