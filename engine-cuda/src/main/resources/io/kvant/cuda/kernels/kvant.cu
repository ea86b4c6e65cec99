// kvant's CUDA kernels. Compiled at run time by NVRTC (KernelCompiler) for the device's
// architecture; no headers are included, so half and bfloat16 conversions are spelled out here
// (PTX cvt for f16, bit arithmetic for bf16).
//
// Conventions shared with the Java side (CudaKernels):
//  - dtype codes: 0 = F32, 1 = F16, 2 = BF16 (weights, activations cast for cuBLASLt, KV cache).
//  - activations are row-major [rows][width] F32 unless a kernel says otherwise.
//  - paged KV pool: [block][layer][k|v][kvHead][slot][headSize] elements of the KV dtype.
//  - block tables: tables[seq * maxBlocks + i] is the pool block of the seq's i-th block;
//    rowSeq[row] is the table index of the row's sequence, positions[row] its position.
// Each kernel has a scalar Java reference in src/test (KernelReferences) and a test against it.

typedef unsigned short u16;
typedef unsigned long long u64;

#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif

// Programmatic dependent launch (Hopper): the Java side may launch every kernel of this file with
// programmatic stream serialization, so a grid can be resident while the previous kernel on the
// stream finishes. Each kernel therefore first lets the next launch begin (launch_dependents: the
// next grid starts once every block of this one has run it, i.e. all are resident) and then waits
// for the previous grid to complete and flush (wait) before it touches any memory another kernel
// writes or reads; work on immutable data (weight prefetches) may come between the two. Both are
// no-ops for a launch without the attribute and before sm_90.
__device__ __forceinline__ void pdl_launch_next() {
#if __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

__device__ __forceinline__ void pdl_wait_previous() {
#if __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void pdl_enter() {
  pdl_launch_next();
  pdl_wait_previous();
}

#define DT_F32 0
#define DT_F16 1
#define DT_BF16 2

__device__ __forceinline__ float bf16_to_f32(u16 h) {
  return __uint_as_float(((unsigned)h) << 16);
}

__device__ __forceinline__ u16 f32_to_bf16(float f) {
  unsigned u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) {
    return (u16)((u >> 16) | 0x40u);  // quiet NaN
  }
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest even
  return (u16)(u >> 16);
}

__device__ __forceinline__ float f16_to_f32(u16 h) {
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
  return f;
}

__device__ __forceinline__ u16 f32_to_f16(float f) {
  u16 h;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
}

__device__ __forceinline__ float load_elem(const void* p, long i, int dtype) {
  if (dtype == DT_F32) return ((const float*)p)[i];
  if (dtype == DT_F16) return f16_to_f32(((const u16*)p)[i]);
  return bf16_to_f32(((const u16*)p)[i]);
}

__device__ __forceinline__ void store_elem(void* p, long i, int dtype, float v) {
  if (dtype == DT_F32) {
    ((float*)p)[i] = v;
  } else if (dtype == DT_F16) {
    ((u16*)p)[i] = f32_to_f16(v);
  } else {
    ((u16*)p)[i] = f32_to_bf16(v);
  }
}

// 8-bit code formats (weights; E4M3 also the FP8 KV cache): 0 = int8, 1 = FP8 E4M3, 2 = FP8 E5M2.
#define QF_INT8 0
#define QF_E4M3 1
#define QF_E5M2 2

__device__ __forceinline__ float decode8(unsigned b, int fmt) {
  if (fmt == QF_INT8) return (float)(signed char)b;
  unsigned sign = (b & 0x80u) << 24;
  if (fmt == QF_E4M3) {
    // exponent and mantissa moved into a binary32's fields: the FP8 value times 2^-120, for
    // normal and subnormal codes alike; times 2^120 is exact.
    return __uint_as_float(sign | ((b & 0x7fu) << 20)) * __uint_as_float(247u << 23);
  }
  return __uint_as_float(sign | ((b & 0x7fu) << 21)) * __uint_as_float(239u << 23);
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
__device__ float block_sum(float v, float* smem) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  float t = lane < warps ? smem[lane] : 0.f;
  return warp_sum(t);
}

__device__ float block_max(float v, float* smem) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  float t = lane < warps ? smem[lane] : -INFINITY;
  return warp_max(t);
}

// x[row] = embedding row tokens[row], as F32. grid: rows.
extern "C" __global__ void embed(const void* table, int dtype, const int* tokens, float* x,
                                 int dim) {
  pdl_enter();
  long src = (long)tokens[blockIdx.x] * dim;
  float* dst = x + (long)blockIdx.x * dim;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) dst[i] = load_elem(table, src + i, dtype);
}

// out[r] = w * x[row] / rms(x[row]) where row = rows ? rows[r] : r, stored as outType (the
// type of the matrix product it feeds, so no separate cast). grid: output rows.
extern "C" __global__ void rmsnorm(const float* x, const float* w, void* out, int dim, float eps,
                                   const int* rows, int outType) {
  pdl_enter();
  __shared__ float smem[32];
  long row = rows ? rows[blockIdx.x] : blockIdx.x;
  const float* xr = x + row * dim;
  float ss = 0.f;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) ss += xr[i] * xr[i];
  ss = block_sum(ss, smem);
  float inv = (float)(1.0 / sqrt((double)(ss / dim + eps)));
  long o = (long)blockIdx.x * dim;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) store_elem(out, o + i, outType, w[i] * (xr[i] * inv));
}

// out = in converted to dtype, count elements. grid-stride.
extern "C" __global__ void cast_f32(const float* in, void* out, int dtype, long count) {
  pdl_enter();
  for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < count;
       i += (long)gridDim.x * blockDim.x) {
    store_elem(out, i, dtype, in[i]);
  }
}

// x[r][c] += bias[c] for total = rows * width elements. grid-stride.
extern "C" __global__ void add_bias(float* x, const float* bias, int width, long total) {
  pdl_enter();
  for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < total;
       i += (long)gridDim.x * blockDim.x) {
    x[i] += bias[i % width];
  }
}

// One rotated pair (a, b) -> (a c - b s, a s + b c), each product and sum rounded as written (no
// contraction into FMAs): the CPU's RoPE to the bit, and the same bits in every kernel that
// rotates (rope_row, attention_decode).
__device__ __forceinline__ void rope_pair(float a, float b, float c, float s, float* ra,
                                          float* rb) {
  float x = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
  float y = __fadd_rn(__fmul_rn(a, s), __fmul_rn(b, c));
  *ra = x;
  *rb = y;
}

// Rotates heads [0, heads) of one row xr at table row base (position * headSize/2): thread t of
// `threads` takes pairs t, t + threads, ...
__device__ __forceinline__ void rope_row(float* xr, long base, const float* cosT,
                                         const float* sinT, int heads, int headSize, int style,
                                         int t0, int threads) {
  int half = headSize / 2;
  for (int t = t0; t < heads * half; t += threads) {
    int h = t / half, i = t % half;
    float c = cosT[base + i], s = sinT[base + i];
    int ia = style == 0 ? 2 * i : i;
    int ib = style == 0 ? 2 * i + 1 : i + half;
    float* o = xr + h * headSize;
    rope_pair(o[ia], o[ib], c, s, o + ia, o + ib);
  }
}

// Rotary embedding in place on x[row] ([heads][headSize]) at positions[row], from the
// precomputed tables cos/sin [position][headSize/2]. style 0: adjacent pairs (2i, 2i+1);
// style 1: halves (i, i + headSize/2). grid: rows.
extern "C" __global__ void rope(float* x, const int* positions, const float* cosT,
                                const float* sinT, int heads, int headSize, int style) {
  pdl_enter();
  long base = (long)positions[blockIdx.x] * (headSize / 2);
  rope_row(x + (long)blockIdx.x * heads * headSize, base, cosT, sinT, heads, headSize, style,
           threadIdx.x, blockDim.x);
}

__device__ __forceinline__ long kv_offset(long block, int layer, int kv, int head, int slot,
                                          int layers, int kvHeads, int blockSize, int headSize) {
  return ((((block * layers + layer) * 2 + kv) * kvHeads + head) * (long)blockSize + slot) *
         headSize;
}

// Quantized KV (DT_KV_I8, DT_KV_E4M3): codes in the pool's element layout, one byte each, and one
// F32 scale per (block, layer, k|v, kvHead, slot) at kvScales[element offset / headSize]:
// symmetric absmax per token and head, as the CPU's PagedKvStore encodes (same scale, same codes:
// x * (127 / amax) rounded half up and clamped to [-127, 127]; E4M3 round to nearest even of
// x * (448 / amax), saturating), so the two engines hold the same cache; the other encodings the
// GPU implements (kvEnc, below) likewise.
#define DT_KV_I8 3
#define DT_KV_E4M3 4

__device__ __forceinline__ float load_kv(const void* pool, long i, int kvType) {
  if (kvType == DT_KV_I8) return (float)((const signed char*)pool)[i];
  if (kvType == DT_KV_E4M3) return decode8(((const unsigned char*)pool)[i], QF_E4M3);
  return load_elem(pool, i, kvType);
}

__device__ __forceinline__ unsigned char e4m3_code(float x) {
#if __CUDA_ARCH__ >= 890
  unsigned short pair;
  asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(pair) : "f"(0.f), "f"(x));
  return (unsigned char)(pair & 0xffu);
#else
  // the same rounding by hand: the CPU encoder's algorithm (round to nearest even, saturating)
  unsigned sign = __float_as_uint(x) & 0x80000000u ? 0x80u : 0u;
  float a = fabsf(x);
  unsigned code;
  if (!(a < 448.f)) {
    code = 0x7eu;
  } else if (a < 0.015625f) {
    code = (unsigned)rintf(a * 512.f);
  } else {
    int e;
    frexpf(a, &e);
    e -= 1;
    int m = (int)rintf((ldexpf(a, -e) - 1.f) * 8.f);
    if (m == 8) { m = 0; e++; }
    code = min(0x7eu, (unsigned)(((e + 7) << 3) | m));
  }
  return (unsigned char)(sign | code);
#endif
}

// KV encodings beyond per-token absmax (the CPU's KvEncoding, whose javadoc defines each to the
// byte): kvEnc bits. KV_TOKEN_MSE: the per-token scales (values, and keys unless KV_KEY_CHANNELS)
// chosen among 32 candidates by least squared error (KvEncoding.Scaling.TOKEN_MSE). KV_KEY_CHANNELS:
// keys with one scale per (block, layer, kvHead, channel) at kChan[((block * layers + layer) *
// kvHeads + kvHead) * headSize + channel], set by the block's first slot and grown (earlier codes
// re-coded) by a later slot that exceeds it (Scaling.BLOCK_CHANNEL); their token scales are unused.
// KV_CENTERED: keys stored minus the calibrated pre-RoPE mean rotated to their position,
// y = k - R(pos) m (KvEncoding.CENTERED_MSE), m = kMean[(layer * kvHeads + kvHead) * headSize + c],
// R(pos) from the forward pass's cos/sin tables; attention adds q . R(t) m back to each score.
// KV_WEIGHTED (with KV_CENTERED): the key scale among TOKEN_MSE's candidates by d^T W d
// (KvEncoding.CENTERED_QMSE), W the queries' second moment, stored transposed per (layer, kvHead):
// kMomentT[((layer * kvHeads + kvHead) * headSize + j) * headSize + i] = W_ij. The errors are
// summed in KV_PARTS parts by kv_weighted_parts, a launch before the append's, which adds them up.
// Every division, product and sum of these encoders is rounded as written (_rn intrinsics: no
// contraction into FMAs), so the codes and scales equal the CPU encoder's bit for bit.
#define KV_TOKEN_MSE 1
#define KV_KEY_CHANNELS 2
#define KV_CENTERED 4
#define KV_WEIGHTED 8  // only with KV_CENTERED | KV_TOKEN_MSE (the Java side checks)
#define KV_PARTS 8  // KV_WEIGHTED: parts of each candidate's error (MseScale.WEIGHTED_PARTS)

// 2^(k/32) rounded to F32 (MseScale.FACTORS), as bits; KernelSourceTest checks them.
__constant__ unsigned kv_mse_factor_bits[32] = {
    0x3f800000u, 0x3f82cd87u, 0x3f85aac3u, 0x3f88980fu, 0x3f8b95c2u, 0x3f8ea43au,
    0x3f91c3d3u, 0x3f94f4f0u, 0x3f9837f0u, 0x3f9b8d3au, 0x3f9ef532u, 0x3fa27043u,
    0x3fa5fed7u, 0x3fa9a15bu, 0x3fad583fu, 0x3fb123f6u, 0x3fb504f3u, 0x3fb8fbafu,
    0x3fbd08a4u, 0x3fc12c4du, 0x3fc5672au, 0x3fc9b9beu, 0x3fce248cu, 0x3fd2a81eu,
    0x3fd744fdu, 0x3fdbfbb8u, 0x3fe0ccdfu, 0x3fe5b907u, 0x3feac0c7u, 0x3fefe4bau,
    0x3ff5257du, 0x3ffa83b3u};

// Java's Math.round of a float as a float: nearest, ties toward +infinity (z - floor(z) is exact).
__device__ __forceinline__ float kv_round(float z) {
  float f = floorf(z);
  return __fsub_rn(z, f) >= 0.5f ? f + 1.f : f;
}

// code(y, s) of KvEncoding: 0 when s == 0, else int8 clamp(round(y / s), -127, 127) or e4m3(y / s).
__device__ __forceinline__ unsigned char kv_code(float y, float s, int kvType) {
  if (s == 0.f) return 0;
  float z = __fdiv_rn(y, s);
  if (kvType == DT_KV_I8) {
    return (unsigned char)(signed char)(int)fminf(127.f, fmaxf(-127.f, kv_round(z)));
  }
  return e4m3_code(z);
}

// value(code): the int8 code as a float, or the E4M3 value.
__device__ __forceinline__ float kv_value(unsigned char c, int kvType) {
  return kvType == DT_KV_I8 ? (float)(signed char)c : decode8(c, QF_E4M3);
}

// The scale s of the lane whose err is least, the lowest lane on ties, for the whole warp (the
// CPU's candidates in increasing order with a strict comparison).
__device__ __forceinline__ float kv_least(float err, float s, int lane) {
  float be = err;
  int bk = lane;
  for (int o = 16; o > 0; o >>= 1) {
    float oe = __shfl_xor_sync(0xffffffffu, be, o);
    int ok = __shfl_xor_sync(0xffffffffu, bk, o);
    if (oe < be || (oe == be && ok < bk)) {
      be = oe;
      bk = ok;
    }
  }
  return __shfl_sync(0xffffffffu, s, bk);
}

// The TOKEN_MSE scale of the n floats at src, for the whole warp (lane k tries candidate k):
// s0 = amax / M, s_k = s0 * 2^(k/32), err_k summed in increasing i; least err_k, the first on ties.
__device__ __forceinline__ float kv_mse_scale(const float* src, int n, int kvType, float amax,
                                              int lane) {
  float maxCode = kvType == DT_KV_I8 ? 127.f : 448.f;
  float s = __fmul_rn(__fdiv_rn(amax, maxCode), __uint_as_float(kv_mse_factor_bits[lane]));
  float err = 0.f;
#pragma unroll 8
  for (int i = 0; i < n; i++) {  // the elements' codes overlap; the sum stays in order
    float x = src[i];
    float d = __fsub_rn(x, __fmul_rn(s, kv_value(kv_code(x, s, kvType), kvType)));
    err = __fadd_rn(err, __fmul_rn(d, d));
  }
  return kv_least(err, s, lane);
}

// The KV_WEIGHTED key scale from kv_weighted_parts' errors of the key (parts[p * 32 + k]: part p
// of candidate k's), for the whole warp: lane k adds its candidate's parts in increasing p from 0;
// least sum, the first on ties (MseScale.quantizeWeighted). amax > 0: the key's absolute maximum.
__device__ __forceinline__ float kv_weighted_pick(const float* parts, int kvType, float amax,
                                                  int lane) {
  float maxCode = kvType == DT_KV_I8 ? 127.f : 448.f;
  float s = __fmul_rn(__fdiv_rn(amax, maxCode), __uint_as_float(kv_mse_factor_bits[lane]));
  float err = 0.f;
#pragma unroll
  for (int p = 0; p < KV_PARTS; p++) err = __fadd_rn(err, parts[p * 32 + lane]);
  return kv_least(err, s, lane);
}

// y[0..n) = k - R(pos) m in F32 (KeyRope.Tables.rotate of m, then the subtraction), by the warp:
// per pair (a, b), r_a = m_a c - m_b s and r_b = m_a s + m_b c.
__device__ __forceinline__ void kv_center_key(const float* k, const float* m, const float* cosT,
                                              const float* sinT, int pos, int style, int n,
                                              float* y, int lane) {
  int half = n / 2;
  long base = (long)pos * half;
  for (int i = lane; i < half; i += 32) {
    float c = cosT[base + i], s = sinT[base + i];
    int ia = style == 0 ? 2 * i : i;
    int ib = style == 0 ? 2 * i + 1 : i + half;
    float ma = m[ia], mb = m[ib];
    float ra = __fsub_rn(__fmul_rn(ma, c), __fmul_rn(mb, s));
    float rb = __fadd_rn(__fmul_rn(ma, s), __fmul_rn(mb, c));
    y[ia] = __fsub_rn(k[ia], ra);
    y[ib] = __fsub_rn(k[ib], rb);
  }
  __syncwarp();
}

// A code re-expressed under a scale 1 / r times as large (ChannelCodes.recode).
__device__ __forceinline__ unsigned char kv_recode(unsigned char c, float r, int kvType) {
  if (kvType == DT_KV_I8) {
    return (unsigned char)(signed char)(int)kv_round(__fmul_rn((float)(signed char)c, r));
  }
  return e4m3_code(__fmul_rn(decode8(c, QF_E4M3), r));
}

// One key channel's element x at `slot` of its block (KV_KEY_CHANNELS): the channel's scale s
// (BLOCK_CHANNEL's rule: set by slot 0, grown, with the earlier slots' codes re-coded, by a slot
// that exceeds it) and the slot's code; codes points at the channel's slot 0 (slots headSize
// apart). Returns the scale after the slot.
__device__ __forceinline__ float kv_channel_slot(float x, int slot, float s, unsigned char* codes,
                                                 int kvType, int headSize) {
  float maxCode = kvType == DT_KV_I8 ? 127.f : 448.f;
  float a = fabsf(x);
  if (slot == 0) {
    s = __fdiv_rn(a, maxCode);
  } else if (a > __fmul_rn(s, maxCode)) {
    float grown = __fdiv_rn(a, maxCode);
    if (s > 0.f) {
      float ratio = __fdiv_rn(s, grown);
      for (int u = 0; u < slot; u++) {
        codes[(long)u * headSize] = kv_recode(codes[(long)u * headSize], ratio, kvType);
      }
    }
    s = grown;
  }
  codes[(long)slot * headSize] = kv_code(x, s, kvType);
  return s;
}

// KV_KEY_CHANNELS keys of row `row`: the first row of the launch that writes a (sequence, block)
// encodes the keys of every row of the launch in that block, in row order (positions are written
// in order), one thread per (head, channel): a channel's rule reads and re-codes only that
// channel's earlier slots, so the channels are independent, but the slots of a block are not.
__device__ __forceinline__ void kv_append_key_channels(int row, int rows, const float* k,
                                                       void* pool, float* kChan, int kvType,
                                                       const int* rowSeq, const int* positions,
                                                       long block, int layer, int layers,
                                                       int kvHeads, int headSize, int blockSize) {
  int seq = rowSeq[row], bi = positions[row] / blockSize;
  for (int r = row - 1; r >= 0; r--) {  // backwards: a block's rows are near each other
    if (rowSeq[r] == seq && positions[r] / blockSize == bi) return;
  }
  int kvDim = kvHeads * headSize;
  for (int t = threadIdx.x; t < kvDim; t += blockDim.x) {
    int h = t / headSize, c = t - h * headSize;
    float* sc = kChan + ((block * layers + layer) * kvHeads + h) * (long)headSize + c;
    unsigned char* codes = (unsigned char*)pool +
                           kv_offset(block, layer, 0, h, 0, layers, kvHeads, blockSize, headSize) +
                           c;
    float s = *sc;
    for (int r = row; r < rows; r++) {
      if (rowSeq[r] != seq) continue;
      if (positions[r] / blockSize != bi) {
        if (positions[r] / blockSize > bi) break;  // the sequence's later blocks
        continue;
      }
      s = kv_channel_slot(k[(long)r * kvDim + t], positions[r] % blockSize, s, codes, kvType,
                          headSize);
    }
    *sc = s;
  }
}

// Codes of src[0..headSize) under the token scale s at pool[o..] and s at kvScales[o / headSize]
// (KV_TOKEN_MSE's searched scales), by one warp.
__device__ __forceinline__ void kv_store_scaled(const float* src, float s, void* pool,
                                                float* kvScales, long o, int kvType, int headSize,
                                                int lane) {
  for (int d = lane; d < headSize; d += 32) {
    ((unsigned char*)pool)[o + d] = kv_code(src[d], s, kvType);
  }
  if (lane == 0) kvScales[o / headSize] = s;
}

// One (head, k|v) vector of headSize floats at src, of absolute maximum amax, into a quantized
// pool at element offset o by the warp: per-token absmax codes (x * (maxCode / amax), int8 rounded
// as Math.round and clamped, or E4M3) and the scale amax / maxCode at kvScales[o / headSize].
__device__ __forceinline__ void kv_store_absmax(const float* src, float amax, void* pool,
                                                float* kvScales, long o, int kvType, int headSize,
                                                int lane) {
  float maxCode = kvType == DT_KV_I8 ? 127.f : 448.f;
  float inv = amax == 0.f ? 0.f : maxCode / amax;
  for (int d = lane; d < headSize; d += 32) {
    float x = __fmul_rn(src[d], inv);
    unsigned char c;
    if (kvType == DT_KV_I8) {
      int q = (int)kv_round(x);  // Math.round, as the CPU's encoder
      c = (unsigned char)(signed char)max(-127, min(127, q));
    } else {
      c = e4m3_code(x);
    }
    ((unsigned char*)pool)[o + d] = c;
  }
  if (lane == 0) kvScales[o / headSize] = amax == 0.f ? 0.f : amax / maxCode;
}

// Writes each row's K and V ([kvHeads][headSize] F32) into the paged pool. grid: rows. For the
// quantized types one warp encodes one (head, k|v) vector (its absmax is a warp reduction), keys
// per channel (kvEnc & KV_KEY_CHANNELS) aside: kv_append_key_channels. rows: the launch's rows
// (every one of them must have its k final before any block runs: rope_kv_append, which rotates
// k inside, takes no KV_KEY_CHANNELS). Vectors are taken keys first (p < kvHeads), so centered
// keys, the costly ones, go to different warps. KV_CENTERED: kMean, cosT/sinT ([position][headSize
// / 2]) and style as rope's; each warp's centered key in dynamic shared memory, headSize floats per
// warp. KV_WEIGHTED: kParts, kv_weighted_parts' output for these rows (this launch's row r at
// kParts[(r * kvHeads + kvHead) * KV_PARTS * 32]).
__device__ __forceinline__ void kv_append_row(int row, int rows, const float* k, const float* v,
                                              void* pool, float* kvScales, float* kChan, int kvEnc,
                                              int kvType, const int* rowSeq,
                                              const int* positions, const int* tables,
                                              int maxBlocks, int layer, int layers, int kvHeads,
                                              int headSize, int blockSize, const float* kMean,
                                              const float* kParts, const float* cosT,
                                              const float* sinT, int style) {
  extern __shared__ float kv_smem[];
  int pos = positions[row];
  long block = tables[(long)rowSeq[row] * maxBlocks + pos / blockSize];
  int slot = pos % blockSize;
  int kvDim = kvHeads * headSize;
  if (kvType == DT_KV_I8 || kvType == DT_KV_E4M3) {
    bool keyChannels = (kvEnc & KV_KEY_CHANNELS) != 0;
    bool weighted = (kvEnc & KV_WEIGHTED) != 0;
    int lane = threadIdx.x & 31, warps = blockDim.x >> 5;
    for (int p = threadIdx.x >> 5; p < 2 * kvHeads; p += warps) {
      int which = p >= kvHeads, h = p - which * kvHeads;
      if (which == 0 && keyChannels) continue;
      const float* src = (which == 0 ? k : v) + (long)row * kvDim + h * headSize;
      bool centered = which == 0 && (kvEnc & KV_CENTERED);
      if (centered) {
        float* y = kv_smem + (threadIdx.x >> 5) * headSize;
        kv_center_key(src, kMean + ((long)layer * kvHeads + h) * headSize, cosT, sinT, pos,
                      style, headSize, y, lane);
        src = y;
      }
      float amax = 0.f;
      for (int d = lane; d < headSize; d += 32) amax = fmaxf(amax, fabsf(src[d]));
      amax = warp_max(amax);
      long o = kv_offset(block, layer, which, h, slot, layers, kvHeads, blockSize, headSize);
      if (kvEnc & KV_TOKEN_MSE) {
        float s = amax == 0.f ? 0.f
                  : centered && weighted
                      ? kv_weighted_pick(kParts + ((long)row * kvHeads + h) * KV_PARTS * 32,
                                         kvType, amax, lane)
                      : kv_mse_scale(src, headSize, kvType, amax, lane);
        kv_store_scaled(src, s, pool, kvScales, o, kvType, headSize, lane);
        __syncwarp();  // a centered key's shared copy is read before the warp's next vector
        continue;
      }
      kv_store_absmax(src, amax, pool, kvScales, o, kvType, headSize, lane);
    }
    if (keyChannels) {
      kv_append_key_channels(row, rows, k, pool, kChan, kvType, rowSeq, positions, block, layer,
                             layers, kvHeads, headSize, blockSize);
    }
    return;
  }
  for (int t = threadIdx.x; t < kvDim; t += blockDim.x) {
    int h = t / headSize, d = t % headSize;
    long ko = kv_offset(block, layer, 0, h, slot, layers, kvHeads, blockSize, headSize) + d;
    long vo = kv_offset(block, layer, 1, h, slot, layers, kvHeads, blockSize, headSize) + d;
    store_elem(pool, ko, kvType, k[(long)row * kvDim + t]);
    store_elem(pool, vo, kvType, v[(long)row * kvDim + t]);
  }
}

// kv_append_row for each row. grid: rows; dynamic shared memory as kv_append_row says.
extern "C" __global__ void __launch_bounds__(1024) kv_append(const float* k, const float* v, void* pool, float* kvScales,
                                     float* kChan, int kvEnc, int kvType, const int* rowSeq,
                                     const int* positions, const int* tables, int maxBlocks,
                                     int layer, int layers, int kvHeads, int headSize,
                                     int blockSize, const float* kMean, const float* kParts,
                                     const float* cosT, const float* sinT, int style) {
  pdl_enter();
  kv_append_row(blockIdx.x, gridDim.x, k, v, pool, kvScales, kChan, kvEnc, kvType, rowSeq,
                positions, tables, maxBlocks, layer, layers, kvHeads, headSize, blockSize, kMean,
                kParts, cosT, sinT, style);
}

// rope on q and k, then kv_append, for each row in one launch (the decode path: three launches
// per layer become one). grid: rows. With KV_KEY_CHANNELS, for rows of distinct sequences only
// (decode steps): a block's first row encodes the block's other rows, whose k another block of this
// launch rotates. Centered keys (KV_CENTERED) use the same cosT/sinT/style as the rotation.
extern "C" __global__ void __launch_bounds__(1024) rope_kv_append(float* q, float* k, const float* v, const float* cosT,
                                          const float* sinT, int heads, int style, void* pool,
                                          float* kvScales, float* kChan, int kvEnc, int kvType,
                                          const int* rowSeq,
                                          const int* positions, const int* tables, int maxBlocks,
                                          int layer, int layers, int kvHeads, int headSize,
                                          int blockSize, const float* kMean,
                                          const float* kParts) {
  pdl_enter();
  int row = blockIdx.x;
  long base = (long)positions[row] * (headSize / 2);
  int qPairs = heads * (headSize / 2);
  // one index space over q's pairs then k's, so all threads share both
  for (int t = threadIdx.x; t < qPairs + kvHeads * (headSize / 2); t += blockDim.x) {
    if (t < qPairs) {
      rope_row(q + (long)row * heads * headSize, base, cosT, sinT, heads, headSize, style, t, 1 << 30);
    } else {
      rope_row(k + (long)row * kvHeads * headSize, base, cosT, sinT, kvHeads, headSize, style,
               t - qPairs, 1 << 30);
    }
  }
  __syncthreads();  // k rotated by other threads before it is stored
  kv_append_row(row, gridDim.x, k, v, pool, kvScales, kChan, kvEnc, kvType, rowSeq, positions,
                tables, maxBlocks, layer, layers, kvHeads, headSize, blockSize, kMean, kParts,
                cosT, sinT, style);
}

// Part blockIdx.z of KV_WEIGHTED's errors for the key of row blockIdx.x and kv head blockIdx.y:
// parts[((row * kvHeads + kvHead) * KV_PARTS + part) * 32 + k] = sum over the part's rows i of
// d_i * r_i, in increasing i from 0, where d = y - s_k value(code(y, s_k)) for candidate k and
// r_i = sum_j W_ij d_j in increasing j (MseScale.quantizeWeighted: a part is rows [part * c, part *
// c + c) of n, c = ceil(n / KV_PARTS); W = kMomentT's matrix of (layer, kvHead), transposed). y is
// the centered key as kv_append_row makes it: the row's key, rotated here first when `rotate`
// (rope_pair on rope_row's pairs, for a rope_kv_append that follows; 0 when k is rotated already),
// minus the rotated mean (kv_center_key). A key of all zeros gets no parts (the append stores scale
// 0 without reading them). The lanes of the block take (k, i) pairs, two at a time (independent
// chains), so a candidate's W d is spread over the block and the grid over KV_PARTS * kvHeads *
// rows blocks: the work of one key, 32 n^2 products, is no longer one warp's. The part's columns
// of W are staged in shared memory before the wait for the previous kernel (no kernel writes
// them). Dynamic shared memory: weightedPartsShared's (n + 32 (n + 1) + 32 c + n c) floats.
extern "C" __global__ void __launch_bounds__(256) kv_weighted_parts(
    const float* k, int rotate, const float* cosT, const float* sinT, int style,
    const int* positions, const float* kMean, const float* kMomentT, int kvType, int layer,
    int kvHeads, int headSize, float* parts) {
  pdl_launch_next();
  extern __shared__ float kv_smem[];
  __shared__ float kvw_amax;
  int row = blockIdx.x, h = blockIdx.y, part = blockIdx.z, n = headSize;
  int lane = threadIdx.x & 31;
  int chunk = (n + KV_PARTS - 1) / KV_PARTS;
  int i0 = part * chunk;
  int count = max(0, min(chunk, n - i0));  // 0: an empty part (n not a multiple of KV_PARTS)
  float* y = kv_smem;              // [n]
  float* d = y + n;                // [32][n + 1]: padded, so the candidates' rows hit other banks
  float* r = d + 32 * (n + 1);     // [32][chunk]
  float* w = r + 32 * chunk;       // [n][chunk]: w[j * chunk + il] = W_(i0 + il) j
  const float* wT = kMomentT + ((long)layer * kvHeads + h) * n * n;
  for (int t = threadIdx.x; t < n * count; t += blockDim.x) {
    int j = t / count, il = t - j * count;
    w[j * chunk + il] = __ldg(wT + (long)j * n + i0 + il);
  }
  pdl_wait_previous();
  int pos = positions[row];
  if (threadIdx.x < 32) {
    const float* kr = k + ((long)row * kvHeads + h) * n;
    for (int i = lane; i < n; i += 32) y[i] = kr[i];
    __syncwarp();
    if (rotate) {
      int half = n / 2;
      long base = (long)pos * half;
      for (int i = lane; i < half; i += 32) {
        int ia = style == 0 ? 2 * i : i;
        int ib = style == 0 ? 2 * i + 1 : i + half;
        rope_pair(y[ia], y[ib], cosT[base + i], sinT[base + i], y + ia, y + ib);
      }
      __syncwarp();
    }
    kv_center_key(y, kMean + ((long)layer * kvHeads + h) * n, cosT, sinT, pos, style, n, y, lane);
    float amax = 0.f;
    for (int i = lane; i < n; i += 32) amax = fmaxf(amax, fabsf(y[i]));
    amax = warp_max(amax);
    if (lane == 0) kvw_amax = amax;
  }
  __syncthreads();
  float amax = kvw_amax;
  if (amax == 0.f) return;
  float maxCode = kvType == DT_KV_I8 ? 127.f : 448.f;
  float s0 = __fdiv_rn(amax, maxCode);
  for (int t = threadIdx.x; t < 32 * n; t += blockDim.x) {
    int c = t / n, i = t - c * n;
    float s = __fmul_rn(s0, __uint_as_float(kv_mse_factor_bits[c]));
    float x = y[i];
    d[c * (n + 1) + i] = __fsub_rn(x, __fmul_rn(s, kv_value(kv_code(x, s, kvType), kvType)));
  }
  __syncthreads();
  int pairs = 32 * count, T = blockDim.x;
  for (int t = threadIdx.x; t < pairs; t += 2 * T) {
    // pairs t and t + T (when there is one: else a copy of t, not stored)
    int t2 = t + T < pairs ? t + T : t;
    int c = t / count, il = t - c * count;
    int c2 = t2 / count, il2 = t2 - c2 * count;
    const float* da = d + c * (n + 1);
    const float* db = d + c2 * (n + 1);
    float acc = 0.f, acc2 = 0.f;
#pragma unroll 4
    for (int j = 0; j < n; j++) {
      acc = __fadd_rn(acc, __fmul_rn(w[j * chunk + il], da[j]));
      acc2 = __fadd_rn(acc2, __fmul_rn(w[j * chunk + il2], db[j]));
    }
    r[c * chunk + il] = acc;
    if (t2 != t) r[c2 * chunk + il2] = acc2;
  }
  __syncthreads();
  if (threadIdx.x < 32) {
    int c = threadIdx.x;
    float e = 0.f;
    for (int il = 0; il < count; il++) {
      e = __fadd_rn(e, __fmul_rn(d[c * (n + 1) + i0 + il], r[c * chunk + il]));
    }
    parts[(((long)row * kvHeads + h) * KV_PARTS + part) * 32 + c] = e;
  }
}

// Element offset in kChan of the key channel scales of (block, layer, kvHead) (KV_KEY_CHANNELS).
__device__ __forceinline__ long kv_chan_base(long block, int layer, int kvh, int layers,
                                             int kvHeads, int headSize) {
  return ((block * layers + layer) * kvHeads + kvh) * (long)headSize;
}

#define ATTN_MAX_DIMS 8  // per lane: head sizes up to 256
#define ATTN_NARROW_WARPS 4

// Centered keys (KV_CENTERED, kMean non-null) in attention and attention_wide: the pool holds
// k_t - R(t) m, so each score gets q . R(t) m back, in KeyRope.addOffsetScores's form: per pair i,
// A_i = q_a m_a + q_b m_b and B_i = q_b m_a - q_a m_b once per (row, head) into shared memory
// (every warp of the block has the same q), then position t adds sum_i A_i cos(t w_i) + B_i
// sin(t w_i), lane l taking the pairs l + 32 u. Why this form here: two table reads per pair and
// position and no change to the key loop or its registers (attention_wide sits at its 128-register
// cap); adding R(t) m into each key element instead would cost the same reads per element.
__device__ __forceinline__ void attn_offset_coeffs(const float* qr, const float* m, int headSize,
                                                   int style, float* ca, float* cb) {
  int half = headSize / 2;
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    int ia = style == 0 ? 2 * i : i;
    int ib = style == 0 ? 2 * i + 1 : i + half;
    float qa = qr[ia], qb = qr[ib], ma = m[ia], mb = m[ib];
    ca[i] = qa * ma + qb * mb;
    cb[i] = qb * ma - qa * mb;
  }
  __syncthreads();
}

// This lane's share of q . R(t) m (attn_offset_coeffs's ca, cb); the warp's sum is the offset.
__device__ __forceinline__ float attn_offset(const float* ca, const float* cb, const float* cosT,
                                             const float* sinT, int t, int half, int lane) {
  long base = (long)t * half;
  float o = 0.f;
  for (int i = lane; i < half; i += 32) o += ca[i] * cosT[base + i] + cb[i] * sinT[base + i];
  return o;
}

// Paged attention for any mix of decode rows and prefill-chunk rows: row r attends to positions
// [0, positions[r]] of its sequence (causal within a chunk, since the chunk's K/V were appended
// first). kChan: the keys' channel scales (KV_KEY_CHANNELS; then keys' token scales are not read),
// else null. kMean: the keys' means (KV_CENTERED; cosT, sinT, style: rope's tables), else null.
// grid: (rows, heads), block: 32 * ATTN_NARROW_WARPS. Each warp runs an online softmax over
// every ATTN_NARROW_WARPS-th position; lanes split the head's dimensions; warps merge at the end.
// For many (row, head) blocks (batches, prefill); attention_wide below serves the few. Bounded to
// 64 registers (8 blocks of 4 warps per SM, as before the centered keys' offset, which took it to
// 68 unbounded; no spills at 64).
extern "C" __global__ void __launch_bounds__(32 * ATTN_NARROW_WARPS, 8) attention(
    const float* q, const void* pool, const float* kvScales, const float* kChan, int kvType,
    void* out, const int* rowSeq, const int* positions, const int* tables, int maxBlocks, int layer,
    int layers, int heads, int kvHeads, int headSize, int blockSize, float scale, int outType,
    const float* kMean, const float* cosT, const float* sinT, int style) {
  pdl_enter();
  __shared__ float sm_m[ATTN_NARROW_WARPS], sm_l[ATTN_NARROW_WARPS];
  __shared__ float sm_acc[ATTN_NARROW_WARPS][ATTN_MAX_DIMS * 32];
  __shared__ float sm_ca[ATTN_MAX_DIMS * 16], sm_cb[ATTN_MAX_DIMS * 16];
  int row = blockIdx.x, h = blockIdx.y;
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  int kvh = h / (heads / kvHeads);
  int len = positions[row] + 1;
  const int* table = tables + (long)rowSeq[row] * maxBlocks;
  const float* qr = q + ((long)row * heads + h) * headSize;
  if (kMean) {
    attn_offset_coeffs(qr, kMean + ((long)layer * kvHeads + kvh) * headSize, headSize, style,
                       sm_ca, sm_cb);
  }
  float qv[ATTN_MAX_DIMS], acc[ATTN_MAX_DIMS];
#pragma unroll
  for (int j = 0; j < ATTN_MAX_DIMS; j++) {
    int d = lane + 32 * j;
    qv[j] = d < headSize ? qr[d] : 0.f;
    acc[j] = 0.f;
  }
  float m = -INFINITY, l = 0.f;
  for (int t = warp; t < len; t += ATTN_NARROW_WARPS) {
    long block = table[t / blockSize];
    int slot = t % blockSize;
    long ko = kv_offset(block, layer, 0, kvh, slot, layers, kvHeads, blockSize, headSize);
    long vo = kv_offset(block, layer, 1, kvh, slot, layers, kvHeads, blockSize, headSize);
    float ks = kChan ? 1.f : kvScales ? kvScales[ko / headSize] : 1.f;
    float vs = kvScales ? kvScales[vo / headSize] : 1.f;
    const float* kc = kChan ? kChan + kv_chan_base(block, layer, kvh, layers, kvHeads, headSize)
                            : nullptr;
    float dot = 0.f;
#pragma unroll
    for (int j = 0; j < ATTN_MAX_DIMS; j++) {
      int d = lane + 32 * j;
      if (d < headSize) dot += qv[j] * (load_kv(pool, ko + d, kvType) * (kc ? kc[d] : 1.f));
    }
    float off = kMean ? warp_sum(attn_offset(sm_ca, sm_cb, cosT, sinT, t, headSize / 2, lane)) : 0.f;
    float s = (warp_sum(dot) * ks + off) * scale;
    float mNew = fmaxf(m, s);
    float corr = expf(m - mNew);
    float p = expf(s - mNew);
    l = l * corr + p;
    float pv = p * vs;
#pragma unroll
    for (int j = 0; j < ATTN_MAX_DIMS; j++) {
      int d = lane + 32 * j;
      if (d < headSize) acc[j] = acc[j] * corr + pv * load_kv(pool, vo + d, kvType);
    }
    m = mNew;
  }
  if (lane == 0) {
    sm_m[warp] = m;
    sm_l[warp] = l;
  }
#pragma unroll
  for (int j = 0; j < ATTN_MAX_DIMS; j++) sm_acc[warp][lane + 32 * j] = acc[j];
  __syncthreads();
  if (warp == 0) {
    float mAll = -INFINITY;
    for (int w = 0; w < ATTN_NARROW_WARPS; w++) mAll = fmaxf(mAll, sm_m[w]);
    float lAll = 0.f;
    float f[ATTN_NARROW_WARPS];
    for (int w = 0; w < ATTN_NARROW_WARPS; w++) {
      f[w] = sm_l[w] > 0.f ? expf(sm_m[w] - mAll) : 0.f;
      lAll += sm_l[w] * f[w];
    }
    float inv = 1.f / lAll;
    long o = ((long)row * heads + h) * headSize;
#pragma unroll
    for (int j = 0; j < ATTN_MAX_DIMS; j++) {
      int d = lane + 32 * j;
      if (d < headSize) {
        float a = 0.f;
        for (int w = 0; w < ATTN_NARROW_WARPS; w++) a += sm_acc[w][d] * f[w];
        store_elem(out, o + d, outType, a * inv);
      }
    }
  }
}

#define ATTN_WARPS 16  // the most warps an attention_wide block may have

// attention_wide: as attention, for few (row, head) blocks (decode of one or a few sequences),
// where a step is bound by the latency of each warp's chain (a table read, then K, a shuffle
// reduction, V), not by bandwidth: 32 * w threads, w <= ATTN_WARPS warps, and each warp takes two
// positions per step (both positions' K and V loads issued before either reduction). The Java
// side picks it when the blocks fit the GPU in one wave; with many blocks its registers and warps
// cost more than they give (measured 2-3x slower at 256 rows), and attention serves them.
extern "C" __global__ void __launch_bounds__(32 * ATTN_WARPS) attention_wide(const float* q, const void* pool,
                                          const float* kvScales, const float* kChan, int kvType,
                                          void* out,
                                          const int* rowSeq, const int* positions,
                                          const int* tables, int maxBlocks, int layer, int layers,
                                          int heads, int kvHeads, int headSize, int blockSize,
                                          float scale, int outType, const float* kMean,
                                          const float* cosT, const float* sinT, int style) {
  pdl_enter();
  __shared__ float sm_m[ATTN_WARPS], sm_l[ATTN_WARPS];
  __shared__ float sm_acc[ATTN_WARPS][ATTN_MAX_DIMS * 32];
  __shared__ float sm_ca[ATTN_MAX_DIMS * 16], sm_cb[ATTN_MAX_DIMS * 16];
  int row = blockIdx.x, h = blockIdx.y;
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  int kvh = h / (heads / kvHeads);
  int len = positions[row] + 1;
  const int* table = tables + (long)rowSeq[row] * maxBlocks;
  const float* qr = q + ((long)row * heads + h) * headSize;
  if (kMean) {
    attn_offset_coeffs(qr, kMean + ((long)layer * kvHeads + kvh) * headSize, headSize, style,
                       sm_ca, sm_cb);
  }
  float qv[ATTN_MAX_DIMS], acc[ATTN_MAX_DIMS];
#pragma unroll
  for (int j = 0; j < ATTN_MAX_DIMS; j++) {
    int d = lane + 32 * j;
    qv[j] = d < headSize ? qr[d] : 0.f;
    acc[j] = 0.f;
  }
  float m = -INFINITY, l = 0.f;
  for (int t0 = warp; t0 < len; t0 += 2 * warps) {
    int t1 = t0 + warps;
    bool two = t1 < len;
    long b0 = table[t0 / blockSize];
    long b1 = two ? table[t1 / blockSize] : b0;
    int s1slot = two ? t1 % blockSize : t0 % blockSize;
    long ko0 = kv_offset(b0, layer, 0, kvh, t0 % blockSize, layers, kvHeads, blockSize, headSize);
    long vo0 = kv_offset(b0, layer, 1, kvh, t0 % blockSize, layers, kvHeads, blockSize, headSize);
    long ko1 = kv_offset(b1, layer, 0, kvh, s1slot, layers, kvHeads, blockSize, headSize);
    long vo1 = kv_offset(b1, layer, 1, kvh, s1slot, layers, kvHeads, blockSize, headSize);
    float k0[ATTN_MAX_DIMS], k1[ATTN_MAX_DIMS], v0[ATTN_MAX_DIMS], v1[ATTN_MAX_DIMS];
#pragma unroll
    for (int j = 0; j < ATTN_MAX_DIMS; j++) {
      int d = lane + 32 * j;
      bool in = d < headSize;
      k0[j] = in ? load_kv(pool, ko0 + d, kvType) : 0.f;
      k1[j] = in ? load_kv(pool, ko1 + d, kvType) : 0.f;
      if (kChan && in) {
        k0[j] *= kChan[kv_chan_base(b0, layer, kvh, layers, kvHeads, headSize) + d];
        k1[j] *= kChan[kv_chan_base(b1, layer, kvh, layers, kvHeads, headSize) + d];
      }
      v0[j] = in ? load_kv(pool, vo0 + d, kvType) : 0.f;
      v1[j] = in ? load_kv(pool, vo1 + d, kvType) : 0.f;
    }
    float dot0 = 0.f, dot1 = 0.f;
#pragma unroll
    for (int j = 0; j < ATTN_MAX_DIMS; j++) {
      dot0 += qv[j] * k0[j];
      dot1 += qv[j] * k1[j];
    }
    for (int o = 16; o > 0; o >>= 1) {
      dot0 += __shfl_xor_sync(0xffffffffu, dot0, o);
      dot1 += __shfl_xor_sync(0xffffffffu, dot1, o);
    }
    float off0 = 0.f, off1 = 0.f;
    if (kMean) {
      off0 = warp_sum(attn_offset(sm_ca, sm_cb, cosT, sinT, t0, headSize / 2, lane));
      off1 = warp_sum(attn_offset(sm_ca, sm_cb, cosT, sinT, two ? t1 : t0, headSize / 2, lane));
    }
    float ks0 = kChan ? 1.f : kvScales ? kvScales[ko0 / headSize] : 1.f;
    float ks1 = kChan ? 1.f : kvScales ? kvScales[ko1 / headSize] : 1.f;
    float vs0 = kvScales ? kvScales[vo0 / headSize] : 1.f;
    float vs1 = kvScales ? kvScales[vo1 / headSize] : 1.f;
    float s0 = (dot0 * ks0 + off0) * scale;
    float s1 = two ? (dot1 * ks1 + off1) * scale : -INFINITY;
    float mNew = fmaxf(m, fmaxf(s0, s1));
    float corr = expf(m - mNew);
    float p0 = expf(s0 - mNew);
    float p1 = two ? expf(s1 - mNew) : 0.f;
    l = l * corr + p0 + p1;
    float pv0 = p0 * vs0, pv1 = p1 * vs1;
#pragma unroll
    for (int j = 0; j < ATTN_MAX_DIMS; j++) acc[j] = acc[j] * corr + pv0 * v0[j] + pv1 * v1[j];
    m = mNew;
  }
  if (lane == 0) {
    sm_m[warp] = m;
    sm_l[warp] = l;
  }
#pragma unroll
  for (int j = 0; j < ATTN_MAX_DIMS; j++) sm_acc[warp][lane + 32 * j] = acc[j];
  __syncthreads();
  if (warp == 0) {
    float mAll = -INFINITY;
    for (int w = 0; w < warps; w++) mAll = fmaxf(mAll, sm_m[w]);
    float lAll = 0.f;
    float f[ATTN_WARPS];
    for (int w = 0; w < warps; w++) {
      f[w] = sm_l[w] > 0.f ? expf(sm_m[w] - mAll) : 0.f;
      lAll += sm_l[w] * f[w];
    }
    float inv = 1.f / lAll;
    long o = ((long)row * heads + h) * headSize;
#pragma unroll
    for (int j = 0; j < ATTN_MAX_DIMS; j++) {
      int d = lane + 32 * j;
      if (d < headSize) {
        float a = 0.f;
        for (int w = 0; w < warps; w++) a += sm_acc[w][d] * f[w];
        store_elem(out, o + d, outType, a * inv);
      }
    }
  }
}

#define FA_WARPS 4
#define FA_ROWS 4                       // query vectors per warp
#define FA_VECS (FA_WARPS * FA_ROWS)    // query vectors per block
#define FA_KT 32                        // positions per K/V tile: one per lane for the scores

// The bytes of one KV element of kvType.
__device__ __forceinline__ int kv_elem_bytes(int kvType) {
  return kvType == DT_F32 ? 4 : (kvType == DT_KV_I8 || kvType == DT_KV_E4M3) ? 1 : 2;
}

// Decodes the 16-byte run `raw` (16 / es elements of kvType) times `scale` into dst[0..].
__device__ __forceinline__ void fa_decode16(uint4 raw, int kvType, float scale, float* dst) {
  unsigned w[4] = {raw.x, raw.y, raw.z, raw.w};
  if (kvType == DT_F32) {
#pragma unroll
    for (int e = 0; e < 4; e++) dst[e] = __uint_as_float(w[e]) * scale;
  } else if (kvType == DT_F16 || kvType == DT_BF16) {
#pragma unroll
    for (int e = 0; e < 4; e++) {
      u16 lo = (u16)(w[e] & 0xffffu), hi = (u16)(w[e] >> 16);
      dst[2 * e] = (kvType == DT_F16 ? f16_to_f32(lo) : bf16_to_f32(lo)) * scale;
      dst[2 * e + 1] = (kvType == DT_F16 ? f16_to_f32(hi) : bf16_to_f32(hi)) * scale;
    }
  } else {
#pragma unroll
    for (int e = 0; e < 16; e++) {
      unsigned b = (w[e >> 2] >> (8 * (e & 3))) & 0xffu;
      dst[e] = (kvType == DT_KV_I8 ? (float)(signed char)b : decode8(b, QF_E4M3)) * scale;
    }
  }
}

// Stages n positions of K and V (rows at element offsets off[0|1][j], scales scale[0|1][j], and
// with kChan the keys' channel scales at kChan[cbase[j] + d] too) into ks/vs (rows `stride` floats
// apart) as floats. Rows of a multiple of 16 bytes are read as 16-byte
// runs, four per thread in flight before any is stored (a tile's loads overlap instead of waiting
// one by one); other rows element by element.
template <bool kCoherent>
__device__ __forceinline__ void fa_stage_tile(const void* pool, int kvType, int headSize, int n,
                                              int stride, const long (&off)[2][FA_KT],
                                              const float (&scale)[2][FA_KT],
                                              const float* kChan, const long (&cbase)[FA_KT],
                                              float* ks, float* vs) {
  const int es = kv_elem_bytes(kvType);
  if ((headSize * es) % 16 == 0) {
    const int perRun = 16 / es;
    const int runsPerRow = headSize / perRun;
    const int perMatrix = n * runsPerRow;
    const int total = 2 * perMatrix;
    for (int c0 = threadIdx.x; c0 < total; c0 += 4 * blockDim.x) {
      uint4 raw[4];
#pragma unroll
      for (int u = 0; u < 4; u++) {
        int c = c0 + u * blockDim.x;
        if (c < total) {
          int which = c >= perMatrix, rem = c - which * perMatrix;
          int j = rem / runsPerRow, run = rem - j * runsPerRow;
          const uint4* src =
              (const uint4*)((const unsigned char*)pool + (off[which][j] + (long)run * perRun) * es);
          raw[u] = kCoherent ? *src : __ldg(src);
        }
      }
#pragma unroll
      for (int u = 0; u < 4; u++) {
        int c = c0 + u * blockDim.x;
        if (c < total) {
          int which = c >= perMatrix, rem = c - which * perMatrix;
          int j = rem / runsPerRow, run = rem - j * runsPerRow;
          float vals[16];
          fa_decode16(raw[u], kvType, scale[which][j], vals);
          float* dst = (which ? vs : ks) + j * stride + run * perRun;
          if (kChan && !which) {
            const float* kc = kChan + cbase[j] + (long)run * perRun;
            for (int e = 0; e < perRun; e++) dst[e] = vals[e] * kc[e];
          } else {
            for (int e = 0; e < perRun; e++) dst[e] = vals[e];
          }
        }
      }
    }
    return;
  }
  for (int i = threadIdx.x; i < n * headSize; i += blockDim.x) {
    int j = i / headSize, d = i - j * headSize;
    ks[j * stride + d] =
        load_kv(pool, off[0][j] + d, kvType) * (kChan ? kChan[cbase[j] + d] : scale[0][j]);
    vs[j * stride + d] = load_kv(pool, off[1][j] + d, kvType) * scale[1][j];
  }
}

// ks[j][..] += R(t0 + j) m for the n staged key rows (KeyRope.Tables.rotate's rotation of m).
__device__ __forceinline__ void fa_add_rotated_mean(const float* m, const float* cosT,
                                                    const float* sinT, int style, int headSize,
                                                    int t0, int n, int stride, float* ks) {
  int half = headSize / 2;
  for (int e = threadIdx.x; e < n * half; e += blockDim.x) {
    int j = e / half, i = e - j * half;
    long tb = (long)(t0 + j) * half + i;
    float c = cosT[tb], s = sinT[tb];
    int ia = style == 0 ? 2 * i : i;
    int ib = style == 0 ? 2 * i + 1 : i + half;
    float ma = m[ia], mb = m[ib];
    ks[j * stride + ia] += ma * c - mb * s;
    ks[j * stride + ib] += ma * s + mb * c;
  }
}

// attention_tiled: flash-style paged attention, for prefill chunks and decode alike. A block takes
// one tile of up to FA_VECS query vectors that read the same K/V: tileRows[t] consecutive batch
// rows of one sequence from tileRow0[t] (the Java side builds the tiles, FA_VECS / G rows each),
// times the G = heads / kvHeads query heads of kv head blockIdx.y (vector v: row v / G, head
// blockIdx.y * G + v % G), and one split blockIdx.z of the positions ([z * splitLen, (z + 1) *
// splitLen), when splits > 1). It walks those positions in tiles of FA_KT, staging each tile's K
// and V (decoded, scaled) in shared memory once for all its vectors, so K/V are read about once
// per FA_VECS vectors rather than once per (row, head). Each warp owns FA_ROWS vectors with an
// online softmax each: lane j scores position j of the tile (the vector broadcast from shared
// memory), then the lanes split the head's dimensions for P * V. Causal: row r sees positions <=
// positions[r]. With one split the block writes out; with several it writes each vector's
// unnormalised partial (acc[headSize], max, sum) at partial[((t * kvHeads + kvh) * splits + z) *
// FA_VECS + v] (headSize + 2 floats each) and attention_merge combines them: splits give decode
// steps (few tiles, long contexts) enough blocks to fill the GPU.
// grid: (tiles, kvHeads, splits), block: 32 * FA_WARPS, dynamic shared memory: 4 * (2 * FA_KT *
// (headSize + 1) + FA_VECS * headSize) bytes (K/V rows padded by one float so the lanes' K reads
// hit distinct banks). Centered keys (kMean, KV_CENTERED): R(t) m is added into each staged key
// row (k_t = stored + R(t) m), once per tile for all its vectors; the offset form of attention
// (A_i, B_i per vector) would cost each vector half a dot product more per position.
// attention_tiled's walk over one block's positions, after its query vectors are staged (qs,
// after the K/V tiles in fa_smem, pre-scaled): the tiles of K and V, the scores, the online
// softmax, P x V, then the output (one split) or the partial (several). kCoherent: read the pool
// with plain loads, not through the read-only cache, for a launch that writes the pool itself
// (attention_decode).
template <bool kCoherent>
__device__ __forceinline__ void fa_attend(
    float* fa_smem, const void* pool, const float* kvScales, const float* kChan, int kvType,
    void* out, const int* rowSeq, const int* positions, const int* tables, int maxBlocks, int layer,
    int layers, int heads, int kvHeads, int headSize, int blockSize, int outType, int r0, int nr,
    int splits, int splitLen, float* partial, const float* kMean, const float* cosT,
    const float* sinT, int style) {
  __shared__ long fa_off[2][FA_KT];
  __shared__ float fa_scale[2][FA_KT];
  __shared__ long fa_cbase[FA_KT];
  const int stride = headSize + 1;
  float* ks = fa_smem;              // [FA_KT][stride]
  float* vs = ks + FA_KT * stride;  // [FA_KT][stride]
  float* qs = vs + FA_KT * stride;  // [FA_VECS][headSize], pre-scaled
  int tile = blockIdx.x, kvh = blockIdx.y, z = blockIdx.z;
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  int g = heads / kvHeads;
  int nvec = nr * g;
  const int* table = tables + (long)rowSeq[r0] * maxBlocks;
  int len = 0;
  for (int r = 0; r < nr; r++) len = max(len, positions[r0 + r] + 1);
  int p0 = splits > 1 ? z * splitLen : 0;
  int p1 = splits > 1 ? min(len, p0 + splitLen) : len;
  int myPos[FA_ROWS];
  float m[FA_ROWS], l[FA_ROWS], acc[FA_ROWS][ATTN_MAX_DIMS];
#pragma unroll
  for (int i = 0; i < FA_ROWS; i++) {
    int v = warp * FA_ROWS + i;
    myPos[i] = v < nvec ? positions[r0 + v / g] : -1;
    m[i] = -INFINITY;
    l[i] = 0.f;
#pragma unroll
    for (int j = 0; j < ATTN_MAX_DIMS; j++) acc[i][j] = 0.f;
  }
  for (int t0 = p0; t0 < p1; t0 += FA_KT) {
    __syncthreads();  // the previous tile is consumed (and q staged, on the first pass)
    int n = min(FA_KT, p1 - t0);
    // each position's K and V row offsets (one table read per position), then the rows
    if (threadIdx.x < n) {
      int t = t0 + threadIdx.x;
      long block = table[t / blockSize];
      int slot = t % blockSize;
      long ko = kv_offset(block, layer, 0, kvh, slot, layers, kvHeads, blockSize, headSize);
      long vo = kv_offset(block, layer, 1, kvh, slot, layers, kvHeads, blockSize, headSize);
      fa_off[0][threadIdx.x] = ko;
      fa_off[1][threadIdx.x] = vo;
      fa_scale[0][threadIdx.x] = kChan ? 1.f : kvScales ? kvScales[ko / headSize] : 1.f;
      fa_cbase[threadIdx.x] = kv_chan_base(block, layer, kvh, layers, kvHeads, headSize);
      fa_scale[1][threadIdx.x] = kvScales ? kvScales[vo / headSize] : 1.f;
    }
    __syncthreads();
    fa_stage_tile<kCoherent>(pool, kvType, headSize, n, stride, fa_off, fa_scale, kChan, fa_cbase, ks, vs);
    if (kMean) {
      __syncthreads();  // staged: add R(t) m to each key row, a thread per (position, pair)
      fa_add_rotated_mean(kMean + ((long)layer * kvHeads + kvh) * headSize, cosT, sinT, style,
                          headSize, t0, n, stride, ks);
    }
    __syncthreads();
    if (warp * FA_ROWS >= nvec) continue;  // a warp without vectors only helps load
    float s[FA_ROWS];
#pragma unroll
    for (int i = 0; i < FA_ROWS; i++) s[i] = 0.f;
    if (lane < n) {
      const float* kr = ks + lane * stride;
      const float* qw = qs + warp * FA_ROWS * headSize;
      for (int d = 0; d < headSize; d++) {
        float kd = kr[d];
#pragma unroll
        for (int i = 0; i < FA_ROWS; i++) s[i] += qw[i * headSize + d] * kd;
      }
    }
    float p[FA_ROWS];
#pragma unroll
    for (int i = 0; i < FA_ROWS; i++) {
      p[i] = 0.f;
      // warp-uniform: a vector with no visible position in this tile keeps its state
      if (myPos[i] < t0) continue;
      bool visible = lane < n && t0 + lane <= myPos[i];
      float si = visible ? s[i] : -INFINITY;
      float mNew = fmaxf(m[i], warp_max(si));
      float corr = expf(m[i] - mNew);
      p[i] = visible ? expf(si - mNew) : 0.f;
      l[i] = l[i] * corr + warp_sum(p[i]);
      m[i] = mNew;
#pragma unroll
      for (int j = 0; j < ATTN_MAX_DIMS; j++) acc[i][j] *= corr;
    }
    for (int jj = 0; jj < n; jj++) {
      float pj[FA_ROWS];
#pragma unroll
      for (int i = 0; i < FA_ROWS; i++) pj[i] = __shfl_sync(0xffffffffu, p[i], jj);
      const float* vr = vs + jj * stride;
#pragma unroll
      for (int j = 0; j < ATTN_MAX_DIMS; j++) {
        int d = lane + 32 * j;
        if (d < headSize) {
          float vd = vr[d];
#pragma unroll
          for (int i = 0; i < FA_ROWS; i++) acc[i][j] += pj[i] * vd;
        }
      }
    }
  }
#pragma unroll
  for (int i = 0; i < FA_ROWS; i++) {
    int v = warp * FA_ROWS + i;
    if (v >= nvec) continue;
    if (splits > 1) {
      float* o = partial + ((((long)tile * kvHeads + kvh) * splits + z) * FA_VECS + v) * (headSize + 2);
#pragma unroll
      for (int j = 0; j < ATTN_MAX_DIMS; j++) {
        int d = lane + 32 * j;
        if (d < headSize) o[d] = acc[i][j];
      }
      if (lane == 0) {
        o[headSize] = m[i];
        o[headSize + 1] = l[i];
      }
      continue;
    }
    float inv = 1.f / l[i];
    long o = ((long)(r0 + v / g) * heads + kvh * g + v % g) * headSize;
#pragma unroll
    for (int j = 0; j < ATTN_MAX_DIMS; j++) {
      int d = lane + 32 * j;
      if (d < headSize) store_elem(out, o + d, outType, acc[i][j] * inv);
    }
  }
}

extern "C" __global__ void __launch_bounds__(32 * FA_WARPS) attention_tiled(
    const float* q, const void* pool, const float* kvScales, const float* kChan, int kvType,
    void* out, const int* rowSeq, const int* positions, const int* tables, int maxBlocks, int layer,
    int layers, int heads, int kvHeads, int headSize, int blockSize, float scale, int outType,
    const int* tileRow0, const int* tileRows, int splits, int splitLen, float* partial,
    const float* kMean, const float* cosT, const float* sinT, int style) {
  pdl_enter();
  extern __shared__ float fa_smem[];
  float* qs = fa_smem + 2 * FA_KT * (headSize + 1);  // [FA_VECS][headSize], pre-scaled
  int kvh = blockIdx.y;
  int g = heads / kvHeads;
  int r0 = tileRow0[blockIdx.x], nvec = tileRows[blockIdx.x] * g;
  for (int i = threadIdx.x; i < FA_VECS * headSize; i += blockDim.x) {
    int v = i / headSize;
    int h = kvh * g + v % g;
    qs[i] = v < nvec ? q[((long)(r0 + v / g) * heads + h) * headSize + (i - v * headSize)] * scale
                     : 0.f;
  }
  fa_attend<false>(fa_smem, pool, kvScales, kChan, kvType, out, rowSeq, positions, tables,
                   maxBlocks, layer, layers, heads, kvHeads, headSize, blockSize, outType, r0,
                   tileRows[blockIdx.x], splits, splitLen, partial, kMean, cosT, sinT, style);
}

// Vector v of tile `tile` and kv head kvh (query head kvh * g + v % g of row r0 + v / g): its
// splits' partials combined, softmax-weighted by each split's max (a split that saw no position
// has sum 0), in split order, and stored normalised; the block's threads take its dimensions.
// Loads bypass L1 (__ldcg): attention_decode's last block reads what other blocks just wrote.
__device__ __forceinline__ void fa_merge_vector(const float* partial, void* out, int tile, int kvh,
                                                int v, int r0, int heads, int kvHeads,
                                                int headSize, int splits, int outType) {
  int g = heads / kvHeads;
  long first = ((long)tile * kvHeads + kvh) * splits * FA_VECS;
  float mAll = -INFINITY;
  for (int z = 0; z < splits; z++)
    mAll = fmaxf(mAll, __ldcg(partial + (first + (long)z * FA_VECS + v) * (headSize + 2) + headSize));
  long o = ((long)(r0 + v / g) * heads + kvh * g + v % g) * headSize;
  for (int d = threadIdx.x; d < headSize; d += blockDim.x) {
    float a = 0.f, sum = 0.f;
    for (int z = 0; z < splits; z++) {
      const float* pz = partial + (first + (long)z * FA_VECS + v) * (headSize + 2);
      float lz = __ldcg(pz + headSize + 1);
      float f = lz > 0.f ? expf(__ldcg(pz + headSize) - mAll) : 0.f;
      a += __ldcg(pz + d) * f;
      sum += lz * f;
    }
    store_elem(out, o + d, outType, a / sum);
  }
}

#define FA_MAX_SPLITS 64  // CudaKernels.splitFor's bound; attention_decode's merge tables

// fa_merge_vector for query vectors v0 .. v0 + n - 1 of one (row, kv head) (all g of them unless
// n > 0: n = g - v0), by the whole block and with the
// same arithmetic: each split's weight f = exp(m_z - max) (0 for a split that saw no position) and
// each vector's sum of l_z f in split order once into shared memory, then a thread per (vector,
// dimension) adds its splits' partials in split order, their loads independent (one vector after
// another in a single thread was a chain of dependent L2 round trips per split: 9% slower decode
// steps at 1,024 positions, 34 splits). Split z's partial of vector v is at base + (z * vecs + v) *
// (headSize + 2) (acc[headSize], max, sum), for z < splits, v < n (the vector v0 + v); kShared:
// base is shared memory (the block's own warps wrote it), else global memory read past L1 (other
// blocks wrote it).
template <bool kShared>
__device__ __forceinline__ void fa_merge_block(const float* base, int vecs, void* out, int kvh,
                                               int r0, int heads, int kvHeads, int headSize,
                                               int splits, int outType, int v0 = 0, int n = 0) {
  __shared__ float fa_w[FA_VECS * FA_MAX_SPLITS];
  __shared__ float fa_sum[FA_VECS];
  const int qh0 = kvh * (heads / kvHeads) + v0;  // the query head of vector 0
  const int g = n > 0 ? n : heads / kvHeads - v0;
  auto at = [&](int z, int v, int d) {
    const float* p = base + ((long)z * vecs + v) * (headSize + 2) + d;
    return kShared ? *p : __ldcg(p);
  };
  for (int i = threadIdx.x; i < g * splits; i += blockDim.x) {
    int v = i / splits, z = i - v * splits;
    fa_w[v * FA_MAX_SPLITS + z] = at(z, v, headSize);
  }
  __syncthreads();
  if (threadIdx.x < g) {
    int v = threadIdx.x;
    float* w = fa_w + v * FA_MAX_SPLITS;
    float mAll = -INFINITY;
    for (int z = 0; z < splits; z++) mAll = fmaxf(mAll, w[z]);
    float sum = 0.f;
    for (int z = 0; z < splits; z++) {
      float lz = at(z, v, headSize + 1);
      float f = lz > 0.f ? expf(w[z] - mAll) : 0.f;
      sum += lz * f;
      w[z] = f;
    }
    fa_sum[v] = sum;
  }
  __syncthreads();
  for (int e = threadIdx.x; e < g * headSize; e += blockDim.x) {
    int v = e / headSize, d = e - v * headSize;
    const float* w = fa_w + v * FA_MAX_SPLITS;
    float a = 0.f;
#pragma unroll 4
    for (int z = 0; z < splits; z++) a += at(z, v, d) * w[z];
    long o = ((long)r0 * heads + qh0 + v) * headSize;
    store_elem(out, o + d, outType, a / fa_sum[v]);
  }
}

// Combines attention_tiled's per-split partials of vector blockIdx.z of tile blockIdx.x and kv
// head blockIdx.y (softmax-weighted by each split's max; a split that saw no position has sum 0)
// and stores the normalised output. One block per vector: a decode step's merge is a couple of
// dependent loads, not one chain per vector. grid: (tiles, kvHeads, FA_VECS), block: any multiple
// of 32.
extern "C" __global__ void attention_merge(const float* partial, void* out, const int* tileRow0,
                                           const int* tileRows, int heads, int kvHeads,
                                           int headSize, int splits, int outType) {
  pdl_enter();
  int tile = blockIdx.x, kvh = blockIdx.y;
  int g = heads / kvHeads;
  int r0 = tileRow0[tile], nvec = tileRows[tile] * g;
  for (int v = blockIdx.z; v < nvec; v += gridDim.z) {
    fa_merge_vector(partial, out, tile, kvh, v, r0, heads, kvHeads, headSize, splits, outType);
  }
}

// A decode row's first step in attention_decode and attention_rows: the query vectors v0 .. v0 +
// vecs - 1 of row r and kv head kvh (query heads kvh * g + v0 + vec), rotated to position pos
// (rope_pair, as rope_row) and times scale, into qs[vec * headSize + d] for vec < vecs (zeros
// where v0 + vec >= g).
__device__ __forceinline__ void fa_stage_row_queries(const float* q, const float* cosT,
                                                     const float* sinT, int style, int r, int pos,
                                                     int kvh, int heads, int g, int headSize,
                                                     float scale, int vecs, float* qs,
                                                     int v0 = 0) {
  int half = headSize / 2;
  long base = (long)pos * half;
  for (int i = threadIdx.x; i < vecs * half; i += blockDim.x) {
    int vec = i / half, p = i - vec * half;
    int ia = style == 0 ? 2 * p : p;
    int ib = style == 0 ? 2 * p + 1 : p + half;
    float* qv = qs + vec * headSize;
    if (v0 + vec < g) {
      const float* qr = q + ((long)r * heads + kvh * g + v0 + vec) * headSize;
      float a, b;
      rope_pair(qr[ia], qr[ib], cosT[base + p], sinT[base + p], &a, &b);
      qv[ia] = a * scale;
      qv[ib] = b * scale;
    } else {
      qv[ia] = 0.f;
      qv[ib] = 0.f;
    }
  }
}

// A decode row's append in attention_decode and attention_rows, by the whole block: the row's key
// of kv head kvh (rotated to pos) and its value, through kr and vr (headSize floats of shared
// memory each), into the pool at position pos (as kv_append_row: token scales by a warp per
// vector, keys per channel by a thread per channel). The caller's next barrier orders these stores
// before its loads of the pool. Without `store`, only kr and vr are written (attention_rows' other
// blocks of the kv head, which take the appended row from them). With `codes` (INT8/FP8 with token
// scales, not keys per channel), the key's and value's codes also go to codes[0 .. headSize) and
// codes[headSize .. 2 headSize), their scales to codeScales[0] and [1], the same values the pool
// gets (the same warp computes both), stored or not. Centered keys (kMean non-null: KV_CENTERED with
// KV_TOKEN_MSE, attention_decode only): kr becomes the rotated key minus R(pos) m, as kv_append_row
// centers it, and with KV_WEIGHTED its scale comes from kParts (kv_weighted_parts' output for this
// launch's rows), else from kv_mse_scale.
__device__ __forceinline__ void fa_append_row(const float* k, const float* v, const float* cosT,
                                              const float* sinT, int style, void* pool,
                                              float* kvScales, float* kChan, int kvEnc,
                                              int kvType, const int* rowSeq, const int* tables,
                                              int maxBlocks, int layer, int layers, int kvHeads,
                                              int headSize, int blockSize, int r, int pos,
                                              int kvh, float* kr, float* vr, bool store = true,
                                              unsigned char* codes = nullptr,
                                              float* codeScales = nullptr,
                                              const float* kMean = nullptr,
                                              const float* kParts = nullptr) {
  int half = headSize / 2;
  long base = (long)pos * half;
  const float* kin = k + ((long)r * kvHeads + kvh) * headSize;
  const float* vin = v + ((long)r * kvHeads + kvh) * headSize;
  for (int p = threadIdx.x; p < half; p += blockDim.x) {
    int ia = style == 0 ? 2 * p : p;
    int ib = style == 0 ? 2 * p + 1 : p + half;
    rope_pair(kin[ia], kin[ib], cosT[base + p], sinT[base + p], kr + ia, kr + ib);
  }
  for (int d = threadIdx.x; d < headSize; d += blockDim.x) vr[d] = vin[d];
  __syncthreads();
  if (kMean) {
    if (threadIdx.x < 32) {
      kv_center_key(kr, kMean + ((long)layer * kvHeads + kvh) * headSize, cosT, sinT, pos, style,
                    headSize, kr, threadIdx.x);
    }
    __syncthreads();
  }
  if (!store && codes == nullptr) return;  // block-uniform
  long block = 0, ko = 0, vo = 0;
  int slot = pos % blockSize;
  if (store) {
    block = tables[(long)rowSeq[r] * maxBlocks + pos / blockSize];
    ko = kv_offset(block, layer, 0, kvh, slot, layers, kvHeads, blockSize, headSize);
    vo = kv_offset(block, layer, 1, kvh, slot, layers, kvHeads, blockSize, headSize);
  }
  if (kvType == DT_KV_I8 || kvType == DT_KV_E4M3) {
    int lane = threadIdx.x & 31, warps = blockDim.x >> 5;
    bool keyChannels = (kvEnc & KV_KEY_CHANNELS) != 0;
    for (int which = threadIdx.x >> 5; which < 2; which += warps) {
      if (which == 0 && keyChannels) continue;
      // a token scale for the value (and the key unless it has channel scales), as kv_append_row
      const float* src = which == 0 ? kr : vr;
      long o = which == 0 ? ko : vo;
      float amax = 0.f;
      for (int d = lane; d < headSize; d += 32) amax = fmaxf(amax, fabsf(src[d]));
      amax = warp_max(amax);
      if (kvEnc & KV_TOKEN_MSE) {
        float sc = amax == 0.f ? 0.f
                   : which == 0 && kParts
                       ? kv_weighted_pick(kParts + ((long)r * kvHeads + kvh) * KV_PARTS * 32,
                                          kvType, amax, lane)
                       : kv_mse_scale(src, headSize, kvType, amax, lane);
        if (store) kv_store_scaled(src, sc, pool, kvScales, o, kvType, headSize, lane);
        if (codes) kv_store_scaled(src, sc, codes, codeScales, which * headSize, kvType, headSize, lane);
      } else {
        if (store) kv_store_absmax(src, amax, pool, kvScales, o, kvType, headSize, lane);
        if (codes) kv_store_absmax(src, amax, codes, codeScales, which * headSize, kvType, headSize, lane);
      }
    }
    if (keyChannels && store) {
      // the key per channel (kv_append_key_channels for one row: the step's only row of this
      // sequence), a thread per channel; the re-coded earlier slots of the block lie in the
      // caller's own position range (attention_decode's splits are whole KV blocks)
      for (int c = threadIdx.x; c < headSize; c += blockDim.x) {
        float* sc = kChan + kv_chan_base(block, layer, kvh, layers, kvHeads, headSize) + c;
        unsigned char* codes = (unsigned char*)pool +
                               kv_offset(block, layer, 0, kvh, 0, layers, kvHeads, blockSize,
                                         headSize) + c;
        *sc = kv_channel_slot(kr[c], slot, *sc, codes, kvType, headSize);
      }
    }
  } else if (store) {
    for (int d = threadIdx.x; d < headSize; d += blockDim.x) {
      store_elem(pool, ko + d, kvType, kr[d]);
      store_elem(pool, vo + d, kvType, vr[d]);
    }
  }
}

// rope_kv_append, attention_tiled and attention_merge of a decode step in one launch, for steps
// whose rows are of distinct sequences (so every tile is one row: tileRow0[t] is its row) and
// whose KV cache holds F32/F16/BF16 or INT8/FP8 codes with token scales (absmax or searched,
// KV_TOKEN_MSE) or keys per channel (KV_KEY_CHANNELS, kChan; then every split must cover whole
// KV blocks, since the append may re-code its block's earlier slots), centered keys too (kMean;
// with KV_WEIGHTED, kParts from a kv_weighted_parts launch before, rotating: fa_append_row). Same
// grid, shared memory and partial layout as attention_tiled
// (plus counters), and the same results to the bit: every block rotates its row's query vectors
// of kv head blockIdx.y as it stages them (rope_pair, as rope_row); the one block whose position
// range holds the row's position also rotates the row's key of that head and appends it and the
// value to the pool (kv_store_absmax / store_elem, as kv_append_row) before its tile loop reads
// them back, with plain loads (the pool is written in this launch, so not through the read-only
// cache). q, k and v are the products' outputs, unrotated, and stay so. With several splits the
// last block of a (tile, kv head) to finish merges the partials in split order (attention_merge's
// arithmetic): counters[tile * kvHeads + kvh] counts the arrivals and is left at 0 for the next
// launch, so a captured graph replays it. Two launches per layer fewer than the three kernels.
extern "C" __global__ void __launch_bounds__(32 * FA_WARPS) attention_decode(
    const float* q, const float* k, const float* v, const float* cosT, const float* sinT,
    int style, void* pool, float* kvScales, float* kChan, int kvEnc, int kvType, void* out,
    const int* rowSeq,
    const int* positions, const int* tables, int maxBlocks, int layer, int layers, int heads,
    int kvHeads, int headSize, int blockSize, float scale, int outType, const int* tileRow0,
    int splits, int splitLen, float* partial, int* counters, const float* kMean,
    const float* kParts) {
  pdl_enter();
  extern __shared__ float fa_smem[];
  __shared__ int fa_last;
  float* qs = fa_smem + 2 * FA_KT * (headSize + 1);  // [FA_VECS][headSize], pre-scaled
  int tile = blockIdx.x, kvh = blockIdx.y, z = blockIdx.z;
  int g = heads / kvHeads;
  int r = tileRow0[tile], pos = positions[r];
  fa_stage_row_queries(q, cosT, sinT, style, r, pos, kvh, heads, g, headSize, scale, FA_VECS, qs);
  if ((splits > 1 ? pos / splitLen : 0) == z) {
    // through the first K/V tile's space: the tile loop stages over it only after a barrier, and
    // fa_attend's first barrier orders the append's stores before the tile loop's loads
    fa_append_row(k, v, cosT, sinT, style, pool, kvScales, kChan, kvEnc, kvType, rowSeq, tables,
                  maxBlocks, layer, layers, kvHeads, headSize, blockSize, r, pos, kvh, fa_smem,
                  fa_smem + headSize, true, nullptr, nullptr, kMean, kParts);
  }
  fa_attend<true>(fa_smem, pool, kvScales, kChan, kvType, out, rowSeq, positions, tables,
                  maxBlocks, layer, layers, heads, kvHeads, headSize, blockSize, outType, r, 1,
                  splits, splitLen, partial, kMean, cosT, sinT, style);
  if (splits == 1) return;
  __threadfence();  // this block's partials, before its arrival is counted
  __syncthreads();
  if (threadIdx.x == 0) {
    int* c = counters + (long)tile * kvHeads + kvh;
    fa_last = atomicAdd(c, 1) == splits - 1;
    if (fa_last) *c = 0;
  }
  __syncthreads();
  if (!fa_last) return;
  __threadfence();
  fa_merge_block<false>(partial + ((long)tile * kvHeads + kvh) * splits * FA_VECS * (headSize + 2),
                        FA_VECS, out, kvh, r, heads, kvHeads, headSize, splits, outType);
}

// attention_rows: attention_decode's work (RoPE, the KV append, attention and its merge for decode
// rows of distinct sequences) for the common shapes, with a warp where attention_decode has a
// block: head size H (32, 64 or 128) and the KV type KVT (F16, BF16, INT8 or FP8 with token scales,
// or with keys per channel: the _kc kernels, whose blocks' ranges must each hold whole KV blocks)
// fixed at compile time, at most FA_ROWS query heads per kv head. Why: at one row attention_decode
// spends its time in a chain of barriers, a global partial per 32-position tile and a merge by the
// last block, with one warp of four computing and the others waiting (perf/RESULTS.md, session
// 27's attnsrc), and in fetching a general kernel's unrolled code for every KV format. Here each
// warp of a block of `warps` takes one range ("split") of tilesPerWarp K/V tiles of 32 positions,
// reads its keys and values straight from the pool (lane j scores position j, then the lanes split
// the head's dimensions for P x V, with fa_attend's online softmax and arithmetic), and the block
// merges its warps' partials in shared memory. Block z of row blockIdx.x and kv head blockIdx.y
// holds splits z * warps + w; with several blocks per row (gridDim.z > 1: few rows, long contexts)
// the partials go to global memory at ((row * kvHeads + kvh) * splits + s) * FA_ROWS + v (headSize
// + 2 floats each, splits = gridDim.z * warps) and the last block of the row to arrive merges them
// (counters as attention_decode's). The results equal, to the bit, rope_kv_append, then
// attention_tiled and attention_merge under a split of gridDim.z * warps ranges of tilesPerWarp *
// 32 positions (one range: attention_tiled's unsplit output); blocks and warps without positions
// of their row do nothing. Except in the _kc kernels, each warp asks for its first tile's keys and
// values of the positions before the row's own between griddepcontrol.launch_dependents and .wait,
// so that under programmatic launch they arrive while the q/k/v product still runs (the same loads,
// the same bits; the step 1.009-1.033x faster at one row on an H200, perf/RESULTS.md, session 39).
// grid: (rows, kvHeads, blocks per row), block: 32 * warps (warps <= AR_MAX_WARPS). The _heads
// kernels (R = 1; F16/BF16 KV, or INT8/FP8 with token scales, not keys per channel) take a block
// per query head instead, grid (rows, heads, blocks per row): each walks the kv head's keys and
// values for its one query vector (a quarter of a warp's arithmetic per tile at four query heads
// per kv head), takes the appended position from its own rotated (INT8/FP8: and coded) row in
// shared memory, and only the kv head's first stores that row to the pool; their global partials
// keep the layout above (the block's vector at v), counters per (row, query head).
#define AR_MAX_WARPS 8

// The register type of a lane's value elements of one row (DPL * ES bytes).
template <int BYTES>
struct ArBits {
  typedef unsigned type;
};
template <>
struct ArBits<8> {
  typedef unsigned long long type;
};

// The shape of one K/V tile's loads for head size H and KV type KVT.
template <int H, int KVT>
struct ArShape {
  static_assert(H == 32 || H == 64 || H == 128, "attention_rows takes head sizes 32, 64, 128");
  static constexpr bool kCodes = KVT == DT_KV_I8 || KVT == DT_KV_E4M3;
  static constexpr int ES = kCodes ? 1 : 2;  // bytes per element
  static constexpr int PER = 16 / ES;        // elements per 16-byte run
  static constexpr int RUNS = H / PER;       // runs per key row
  static constexpr int DPL = H / 32;         // dimensions per lane in P x V: lane * DPL + j
};

// A lane's loads of one tile of 32 positions: its position's key row (16-byte runs), its key scale
// (token scales), its block's channel scales (keys per channel), and its DPL elements of every
// value row of the tile.
template <int H, int KVT>
struct ArTile {
  uint4 raw[ArShape<H, KVT>::RUNS];
  typename ArBits<ArShape<H, KVT>::DPL * ArShape<H, KVT>::ES>::type vbits[FA_KT];
  float ks;         // 1 for unscaled types
  const float* kc;  // keys per channel only
};

template <int H, int KVT>
__device__ __forceinline__ void ar_clear(ArTile<H, KVT>& T) {
  T.ks = 1.f;
  T.kc = nullptr;
#pragma unroll
  for (int jj = 0; jj < FA_KT; jj++) T.vbits[jj] = 0;
}

// The warp's loads of the tile of positions t0 .. t0 + n - 1 that lie in [lo, hi): each such lane's
// key row, offsets and scales, then every lane's share of those positions' value rows, all in
// flight together, one round trip after the table's. Split in two ranges, the same loads as one:
// attention_rows asks for the positions before the appended one while its predecessor still runs,
// and for the appended one after the append. Plain loads: the launch appends to the pool.
template <int H, int KVT, bool KCH>
__device__ __forceinline__ void ar_fetch(ArTile<H, KVT>& T, const unsigned char* pool,
                                         const float* kvScales, const float* kChan,
                                         const int* table, int layer, int layers, int kvHeads,
                                         int blockSize, int kvh, int t0, int n, int lo, int hi,
                                         long* off, float* sc) {
  typedef ArShape<H, KVT> S;
  const int lane = threadIdx.x & 31;
  const int p = t0 + lane;
  if (lane < n && p >= lo && p < hi) {
    long block = table[p / blockSize];
    int slot = p % blockSize;
    long ko = kv_offset(block, layer, 0, kvh, slot, layers, kvHeads, blockSize, H);
    long vo = kv_offset(block, layer, 1, kvh, slot, layers, kvHeads, blockSize, H);
    if (S::kCodes && !KCH) T.ks = kvScales[ko / H];
    if (KCH) T.kc = kChan + kv_chan_base(block, layer, kvh, layers, kvHeads, H);
    off[lane] = vo;
    if (S::kCodes) sc[lane] = kvScales[vo / H];
    const uint4* kr = (const uint4*)(pool + ko * S::ES);
#pragma unroll
    for (int c = 0; c < S::RUNS; c++) T.raw[c] = kr[c];
  }
  __syncwarp();  // off and sc written
#pragma unroll
  for (int jj = 0; jj < FA_KT; jj++) {
    if (jj < n && t0 + jj >= lo && t0 + jj < hi) {
      const unsigned char* vr = pool + (off[jj] + lane * S::DPL) * S::ES;
      if constexpr (S::DPL * S::ES == 8) {
        T.vbits[jj] = *(const typename ArBits<S::DPL * S::ES>::type*)vr;
      } else if constexpr (S::DPL * S::ES == 4) {
        T.vbits[jj] = *(const unsigned*)vr;
      } else if constexpr (S::DPL * S::ES == 2) {
        T.vbits[jj] = *(const u16*)vr;
      } else {
        T.vbits[jj] = *vr;
      }
    }
  }
}

// One tile's arithmetic on its loads (fa_attend's, tile by tile): lane j scores position t0 + j
// (j < n) against the R query vectors at qs (pre-scaled), the online softmax, then P x V
// into acc. sc and ps: the warp's FA_KT value scales and FA_KT x R probabilities in shared
// memory.
template <int H, int KVT, bool KCH, int R>
__device__ __forceinline__ void ar_math(const ArTile<H, KVT>& T, const float* qs, int n,
                                        const float* sc, float* ps, float (&m)[R],
                                        float (&l)[R], float (&acc)[R][H / 32]) {
  typedef ArShape<H, KVT> S;
  const int lane = threadIdx.x & 31;
  const bool has = lane < n;
  float s[R];
#pragma unroll
  for (int i = 0; i < R; i++) s[i] = 0.f;
  if (has) {
#pragma unroll
    for (int c = 0; c < S::RUNS; c++) {
      float kd[S::PER];
      fa_decode16(T.raw[c], KVT, T.ks, kd);
      if constexpr (KCH) {
#pragma unroll
        for (int e = 0; e < S::PER; e++) kd[e] *= T.kc[c * S::PER + e];
      }
#pragma unroll
      for (int e = 0; e < S::PER; e++) {
#pragma unroll
        for (int i = 0; i < R; i++) s[i] += qs[i * H + c * S::PER + e] * kd[e];
      }
    }
  }
#pragma unroll
  for (int i = 0; i < R; i++) {
    float si = has ? s[i] : -INFINITY;
    float mNew = fmaxf(m[i], warp_max(si));
    float corr = expf(m[i] - mNew);
    float p = has ? expf(si - mNew) : 0.f;
    l[i] = l[i] * corr + warp_sum(p);
    m[i] = mNew;
#pragma unroll
    for (int j = 0; j < S::DPL; j++) acc[i][j] *= corr;
    ps[lane * R + i] = p;
  }
  __syncwarp();
#pragma unroll
  for (int jj = 0; jj < FA_KT; jj++) {
    if (jj >= n) break;
    float vs = S::kCodes ? sc[jj] : 1.f;
    float vd[S::DPL];
#pragma unroll
    for (int j = 0; j < S::DPL; j++) {
      unsigned e = (unsigned)(T.vbits[jj] >> (8 * S::ES * j));  // j < DPL: within the type
      if constexpr (KVT == DT_KV_I8) {
        vd[j] = (float)(signed char)(e & 0xffu) * vs;
      } else if constexpr (KVT == DT_KV_E4M3) {
        vd[j] = decode8(e & 0xffu, QF_E4M3) * vs;
      } else if constexpr (KVT == DT_F16) {
        vd[j] = f16_to_f32((u16)e) * vs;
      } else {
        vd[j] = bf16_to_f32((u16)e) * vs;
      }
    }
#pragma unroll
    for (int i = 0; i < R; i++) {
      float pj = ps[jj * R + i];
#pragma unroll
      for (int j = 0; j < S::DPL; j++) acc[i][j] += pj * vd[j];
    }
  }
  __syncwarp();  // off, sc and ps are read before the next tile writes them
}

// The F16 (or BF16) bits of v, as store_elem stores it in a pool of that type.
template <int KVT>
__device__ __forceinline__ unsigned ar_bits(float v) {
  return KVT == DT_F16 ? (unsigned)f32_to_f16(v) : (unsigned)f32_to_bf16(v);
}

// Lane `slot`'s key row and every lane's value elements of position t0 + slot, from the block's
// appended row in shared memory (key at appended[0 .. H), rotated; value at appended[H .. 2H)),
// as the F16/BF16 bits store_elem wrote to the pool: the same values a load would give.
template <int H, int KVT>
__device__ __forceinline__ void ar_take_appended(ArTile<H, KVT>& T, const float* appended,
                                                 int slot) {
  typedef ArShape<H, KVT> S;
  static_assert(!S::kCodes, "codes with scales come from the pool");
  const int lane = threadIdx.x & 31;
  if (lane == slot) {
#pragma unroll
    for (int c = 0; c < S::RUNS; c++) {
      const float* k = appended + c * S::PER;
      unsigned w[4];
#pragma unroll
      for (int i = 0; i < 4; i++) w[i] = ar_bits<KVT>(k[2 * i]) | (ar_bits<KVT>(k[2 * i + 1]) << 16);
      T.raw[c] = make_uint4(w[0], w[1], w[2], w[3]);
    }
  }
  const float* v = appended + H + lane * S::DPL;
  typename ArBits<S::DPL * S::ES>::type bits = 0;
#pragma unroll
  for (int j = 0; j < S::DPL; j++) {
    bits |= (typename ArBits<S::DPL * S::ES>::type)ar_bits<KVT>(v[j]) << (16 * j);
  }
  // unrolled with constant indices: an index known only at run time would put vbits in local
  // memory (544 bytes of stack, ptxas)
#pragma unroll
  for (int jj = 0; jj < FA_KT; jj++) {
    if (jj == slot) T.vbits[jj] = bits;
  }
}

// Lane `slot`'s key codes and scale, the value's scale in sc[slot], and every lane's value codes of
// position t0 + slot, from the block's own coding of the appended row in shared memory (fa_append_row's
// `codes`: key codes at codes[0 .. H), value codes at codes[H .. 2H), then the two scales as
// floats): the same bytes and scales the append stored in the pool.
template <int H, int KVT>
__device__ __forceinline__ void ar_take_appended_codes(ArTile<H, KVT>& T,
                                                       const unsigned char* codes, int slot,
                                                       float* sc) {
  typedef ArShape<H, KVT> S;
  static_assert(S::kCodes, "F16/BF16 rows come from ar_take_appended");
  const int lane = threadIdx.x & 31;
  const float* scales = (const float*)(codes + 2 * H);
  if (lane == slot) {
#pragma unroll
    for (int c = 0; c < S::RUNS; c++) T.raw[c] = ((const uint4*)codes)[c];
    T.ks = scales[0];
    sc[slot] = scales[1];
  }
  const unsigned char* vr = codes + H + lane * S::DPL;
  typename ArBits<S::DPL * S::ES>::type bits;
  if constexpr (S::DPL * S::ES == 4) {
    bits = *(const unsigned*)vr;
  } else if constexpr (S::DPL * S::ES == 2) {
    bits = *(const u16*)vr;
  } else {
    bits = *vr;
  }
#pragma unroll
  for (int jj = 0; jj < FA_KT; jj++) {
    if (jj == slot) T.vbits[jj] = bits;
  }
}

// One warp's range: tiles [first, first + tiles) of a row whose last position is pos, into the
// warp's online-softmax state. With `prefetched`, T already holds the first tile's loads of the
// positions before pos (attention_rows asked for them before its predecessor's end), and only
// pos's are loaded here. With `appended` (F16/BF16: the block's rotated row in shared memory;
// INT8/FP8: its codes and scales, ar_take_appended_codes) pos comes from there instead of the
// pool. off, sc and ps: the warp's FA_KT value offsets, value scales and FA_KT x R probabilities
// in shared memory.
template <int H, int KVT, bool KCH, int R>
__device__ __forceinline__ void ar_walk(const float* qs, const unsigned char* pool,
                                        const float* kvScales, const float* kChan,
                                        const int* table, int layer, int layers, int kvHeads,
                                        int blockSize, int kvh, int pos, int first, int tiles,
                                        bool prefetched, const void* appended,
                                        ArTile<H, KVT>& T, long* off, float* sc,
                                        float* ps, float (&m)[R], float (&l)[R],
                                        float (&acc)[R][H / 32]) {
#pragma unroll
  for (int i = 0; i < R; i++) {
    m[i] = -INFINITY;
    l[i] = 0.f;
#pragma unroll
    for (int j = 0; j < H / 32; j++) acc[i][j] = 0.f;
  }
  for (int t = 0; t < tiles; t++) {
    const int t0 = (first + t) * FA_KT;
    if (t0 > pos) break;  // warp-uniform
    const int n = min(FA_KT, pos + 1 - t0);
    const bool rest = prefetched && t == 0;
    if (!rest) ar_clear(T);
    // the appended position's key and value are this block's own row in shared memory, as the
    // append stored them, so they need no trip to the pool after it
    const bool own = appended != nullptr && pos < t0 + FA_KT;
    ar_fetch<H, KVT, KCH>(T, pool, kvScales, kChan, table, layer, layers, kvHeads, blockSize, kvh,
                          t0, n, rest ? pos : t0, own ? pos : pos + 1, off, sc);
    if (own) {
      if constexpr (ArShape<H, KVT>::kCodes) {
        ar_take_appended_codes<H, KVT>(T, (const unsigned char*)appended, pos - t0, sc);
      } else {
        ar_take_appended<H, KVT>(T, (const float*)appended, pos - t0);
      }
    }
    ar_math<H, KVT, KCH, R>(T, qs, n, sc, ps, m, l, acc);
  }
}

template <int H, int KVT, bool KCH, int R>
__device__ __forceinline__ void attention_rows_body(
    const float* q, const float* k, const float* v, const float* cosT, const float* sinT,
    int style, unsigned char* pool, float* kvScales, float* kChan, int kvEnc, void* out,
    const int* rowSeq, const int* positions, const int* tables, int maxBlocks, int layer,
    int layers, int heads, int kvHeads, int blockSize, float scale, int outType, int tilesPerWarp,
    float* partial, int* counters) {
  __shared__ float ar_q[FA_ROWS * H];
  __shared__ float ar_kv[2 * H];
  __shared__ long ar_off[AR_MAX_WARPS][FA_KT];
  __shared__ float ar_sc[AR_MAX_WARPS][FA_KT];
  __shared__ float ar_p[AR_MAX_WARPS][FA_KT * FA_ROWS];
  __shared__ float ar_part[AR_MAX_WARPS * FA_ROWS * (H + 2)];
  constexpr bool kOwnCodes = ArShape<H, KVT>::kCodes && R == 1;
  // a block per query head over INT8/FP8: the appended row's codes, then its two scales (as uint4s
  // for their 16-byte alignment); one unused uint4 in the other kernels
  __shared__ uint4 ar_codes4[kOwnCodes ? (2 * H + 2 * sizeof(float) + 15) / 16 : 1];
  unsigned char* ar_codes = (unsigned char*)ar_codes4;
  __shared__ int ar_last;
  static_assert(R == FA_ROWS || (R == 1 && !KCH),
                "a block per query head (R = 1) takes F16/BF16 KV or codes with token scales");
  pdl_launch_next();
  const int g = heads / kvHeads;
  // R = FA_ROWS: blockIdx.y is the kv head, its g query heads the block's vectors; R = 1: it is
  // the query head, vector v0 of its kv head
  const int r = blockIdx.x, kvh = R == 1 ? blockIdx.y / g : blockIdx.y, z = blockIdx.z;
  const int v0 = R == 1 ? blockIdx.y - kvh * g : 0;
  const int warps = blockDim.x >> 5, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  // the step's integers (positions, rows' sequences, block tables) are copied in before the step's
  // first kernel and written by none, so they may be read before the wait
  const int pos = positions[r];
  const int span = tilesPerWarp * FA_KT;  // positions per split
  if (z * warps * span > pos) return;     // block-uniform: none of the row's positions here
  const int* table = tables + (long)rowSeq[r] * maxBlocks;
  const int splits = gridDim.z * warps;
  const int split = z * warps + warp;
  // not with keys per channel, whose append may re-code earlier slots of its KV block: the warp's
  // first tile's loads of the positions before pos, which earlier steps appended, are asked for
  // before the wait, so they arrive while the q/k/v product still runs
  const int first0 = split * tilesPerWarp * FA_KT;
  const bool prefetched = !KCH && first0 <= pos;
  ArTile<H, KVT> T;
  if (prefetched) {
    ar_clear(T);
    ar_fetch<H, KVT, KCH>(T, pool, kvScales, kChan, table, layer, layers, kvHeads, blockSize, kvh,
                          first0, min(FA_KT, pos + 1 - first0), first0, pos, ar_off[warp],
                          ar_sc[warp]);
  }
  pdl_wait_previous();
  fa_stage_row_queries(q, cosT, sinT, style, r, pos, kvh, heads, g, H, scale, R, ar_q, v0);
  const bool appends = pos / (warps * span) == z;
  if (appends) {
    // with a block per query head, every block of the kv head rotates the row into ar_kv (and
    // codes it into ar_codes: INT8/FP8), its walk takes the appended position from there, and
    // the first stores it
    fa_append_row(k, v, cosT, sinT, style, pool, kvScales, KCH ? kChan : nullptr, kvEnc, KVT,
                  rowSeq, tables, maxBlocks, layer, layers, kvHeads, H, blockSize, r, pos, kvh,
                  ar_kv, ar_kv + H, v0 == 0, kOwnCodes ? ar_codes : nullptr,
                  kOwnCodes ? (float*)(ar_codes + 2 * H) : nullptr);
  }
  __syncthreads();  // the queries staged, the append's stores before the walks' loads
  float m[R], l[R], acc[R][H / 32];
  // F16/BF16: the rotated row (either form); codes: their own coding, a block per query head only
  const void* appended =
      !appends ? nullptr
               : (ArShape<H, KVT>::kCodes ? (kOwnCodes ? (const void*)ar_codes : nullptr)
                                          : (const void*)ar_kv);
  ar_walk<H, KVT, KCH, R>(ar_q, pool, kvScales, kChan, table, layer, layers, kvHeads, blockSize, kvh,
                       pos, split * tilesPerWarp, tilesPerWarp, prefetched, appended, T,
                       ar_off[warp], ar_sc[warp], ar_p[warp], m, l, acc);
  if (splits == 1) {
    // attention_tiled's unsplit output
#pragma unroll
    for (int i = 0; i < R; i++) {
      if (v0 + i >= g) continue;
      float inv = 1.f / l[i];
      long o = ((long)r * heads + kvh * g + v0 + i) * H;
#pragma unroll
      for (int j = 0; j < H / 32; j++) {
        store_elem(out, o + lane * (H / 32) + j, outType, acc[i][j] * inv);
      }
    }
    return;
  }
  const int used = min(splits, pos / span + 1);  // splits that hold positions
  const bool whole = gridDim.z == 1;
  // in global memory the layout of FA_ROWS vectors a (row, kv head, split) either way, a block
  // per query head writing and merging its vector v0's slots
  float* base = whole ? ar_part
                      : partial + (((long)r * kvHeads + kvh) * splits * FA_ROWS + v0) * (H + 2);
  if (split < used) {
    float* dst = base + (long)(whole ? warp * R : split * FA_ROWS) * (H + 2);
#pragma unroll
    for (int i = 0; i < R; i++) {
#pragma unroll
      for (int j = 0; j < H / 32; j++) dst[i * (H + 2) + lane * (H / 32) + j] = acc[i][j];
      if (lane == 0) {
        dst[i * (H + 2) + H] = m[i];
        dst[i * (H + 2) + H + 1] = l[i];
      }
    }
  }
  if (whole) {
    __syncthreads();
    fa_merge_block<true>(ar_part, R, out, kvh, r, heads, kvHeads, H, used, outType, v0,
                         R == 1 ? 1 : 0);
    return;
  }
  __threadfence();  // this block's partials, before its arrival is counted
  __syncthreads();
  if (threadIdx.x == 0) {
    int* c = counters + (long)r * gridDim.y + blockIdx.y;  // per (row, kv or query head)
    int arrivals = pos / (warps * span) + 1;  // the blocks with positions
    ar_last = atomicAdd(c, 1) == arrivals - 1;
    if (ar_last) *c = 0;
  }
  __syncthreads();
  if (!ar_last) return;
  __threadfence();
  fa_merge_block<false>(base, FA_ROWS, out, kvh, r, heads, kvHeads, H, used, outType, v0,
                        R == 1 ? 1 : 0);
}

#define ATTENTION_ROWS_R(NAME, H, KVT, KCH, R)                                                     \
  extern "C" __global__ void __launch_bounds__(32 * AR_MAX_WARPS) NAME(                            \
      const float* q, const float* k, const float* v, const float* cosT, const float* sinT,        \
      int style, unsigned char* pool, float* kvScales, float* kChan, int kvEnc, void* out,         \
      const int* rowSeq, const int* positions, const int* tables, int maxBlocks, int layer,        \
      int layers, int heads, int kvHeads, int blockSize, float scale, int outType,                 \
      int tilesPerWarp, float* partial, int* counters) {                                           \
    attention_rows_body<H, KVT, KCH, R>(q, k, v, cosT, sinT, style, pool, kvScales, kChan, kvEnc,  \
                                     out, rowSeq, positions, tables, maxBlocks, layer, layers,     \
                                     heads, kvHeads, blockSize, scale, outType, tilesPerWarp,      \
                                     partial, counters);                                           \
  }
#define ATTENTION_ROWS(NAME, H, KVT, KCH) ATTENTION_ROWS_R(NAME, H, KVT, KCH, FA_ROWS)
ATTENTION_ROWS(attention_rows_h32_f16, 32, DT_F16, false)
ATTENTION_ROWS(attention_rows_h32_bf16, 32, DT_BF16, false)
ATTENTION_ROWS(attention_rows_h32_i8, 32, DT_KV_I8, false)
ATTENTION_ROWS(attention_rows_h32_e4m3, 32, DT_KV_E4M3, false)
ATTENTION_ROWS(attention_rows_h64_f16, 64, DT_F16, false)
ATTENTION_ROWS(attention_rows_h64_bf16, 64, DT_BF16, false)
ATTENTION_ROWS(attention_rows_h64_i8, 64, DT_KV_I8, false)
ATTENTION_ROWS(attention_rows_h64_e4m3, 64, DT_KV_E4M3, false)
ATTENTION_ROWS(attention_rows_h128_f16, 128, DT_F16, false)
ATTENTION_ROWS(attention_rows_h128_bf16, 128, DT_BF16, false)
ATTENTION_ROWS(attention_rows_h128_i8, 128, DT_KV_I8, false)
ATTENTION_ROWS(attention_rows_h128_e4m3, 128, DT_KV_E4M3, false)
// keys per channel (KV_KEY_CHANNELS): a block's range must hold whole KV blocks (the append may
// re-code its KV block's earlier slots before the block's barrier)
ATTENTION_ROWS(attention_rows_h32_i8_kc, 32, DT_KV_I8, true)
ATTENTION_ROWS(attention_rows_h32_e4m3_kc, 32, DT_KV_E4M3, true)
ATTENTION_ROWS(attention_rows_h64_i8_kc, 64, DT_KV_I8, true)
ATTENTION_ROWS(attention_rows_h64_e4m3_kc, 64, DT_KV_E4M3, true)
ATTENTION_ROWS(attention_rows_h128_i8_kc, 128, DT_KV_I8, true)
ATTENTION_ROWS(attention_rows_h128_e4m3_kc, 128, DT_KV_E4M3, true)
// a block per query head (grid (rows, heads, blocks per row)), F16/BF16 KV or INT8/FP8 with token
// scales: every block rotates (and codes) the appended row into its shared memory and the kv
// head's first stores it (CudaKernels.attentionRows)
ATTENTION_ROWS_R(attention_rows_h32_f16_heads, 32, DT_F16, false, 1)
ATTENTION_ROWS_R(attention_rows_h32_bf16_heads, 32, DT_BF16, false, 1)
ATTENTION_ROWS_R(attention_rows_h64_f16_heads, 64, DT_F16, false, 1)
ATTENTION_ROWS_R(attention_rows_h64_bf16_heads, 64, DT_BF16, false, 1)
ATTENTION_ROWS_R(attention_rows_h128_f16_heads, 128, DT_F16, false, 1)
ATTENTION_ROWS_R(attention_rows_h128_bf16_heads, 128, DT_BF16, false, 1)
ATTENTION_ROWS_R(attention_rows_h32_i8_heads, 32, DT_KV_I8, false, 1)
ATTENTION_ROWS_R(attention_rows_h32_e4m3_heads, 32, DT_KV_E4M3, false, 1)
ATTENTION_ROWS_R(attention_rows_h64_i8_heads, 64, DT_KV_I8, false, 1)
ATTENTION_ROWS_R(attention_rows_h64_e4m3_heads, 64, DT_KV_E4M3, false, 1)
ATTENTION_ROWS_R(attention_rows_h128_i8_heads, 128, DT_KV_I8, false, 1)
ATTENTION_ROWS_R(attention_rows_h128_e4m3_heads, 128, DT_KV_E4M3, false, 1)

// out = silu(gate) * up, elementwise, stored as outType. grid-stride.
extern "C" __global__ void swiglu(const float* gate, const float* up, void* out, long total,
                                  int outType) {
  pdl_enter();
  for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < total;
       i += (long)gridDim.x * blockDim.x) {
    float g = gate[i];
    store_elem(out, i, outType, g / (1.f + expf(-g)) * up[i]);
  }
}

// x += d, elementwise. grid-stride.
extern "C" __global__ void add_inplace(float* x, const float* d, long total) {
  pdl_enter();
  for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < total;
       i += (long)gridDim.x * blockDim.x) {
    x[i] += d[i];
  }
}

__device__ __forceinline__ u64 splitmix64(u64 z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

#define SAMPLE_THREADS 1024
#define SAMPLE_BINS 2048
#define SAMPLE_CAP 4096
#define SAMPLE_LEVELS 6
#define SAMPLE_INF_KEY 0x7f800000u
// A kept token's weight in fixed point, exp(-d / T) * 2^40: sums over a row (< 2^57) are exact
// integers, so a threshold does not depend on the order the block adds them in.
#define SAMPLE_UNIT 1099511627776.f

// Sum over the block of 64-bit integers; every thread gets the result (exact, so any order).
__device__ u64 block_sum_u64(u64 v, u64* red) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  __syncthreads();
  if (lane == 0) red[warp] = v;
  __syncthreads();
  u64 t = lane < warps ? red[lane] : 0ull;
  for (int o = 16; o > 0; o >>= 1) t += __shfl_xor_sync(0xffffffffu, t, o);
  return t;
}

// A token is ranked by d = max - logit (>= 0; +inf for -inf logits; NaN for NaN logits). The bits
// of a non-negative float ascend with its value, so "key(d) <= K" keeps the tokens at or above a
// logit threshold, ties included, and a NaN (key above SAMPLE_INF_KEY) is never kept.
__device__ __forceinline__ u64 sample_weight(float d, float invT) {
  return (u64)(expf(-d * invT) * SAMPLE_UNIT);
}

__device__ __forceinline__ int sample_bin(float d, float lo, float scale) {
  float f = (d - lo) * scale;
  int b = f < (float)SAMPLE_BINS ? (int)f : SAMPLE_BINS - 1;  // NaN and +inf: the last bin
  return b < 0 ? 0 : b;
}

struct SampleLevel {
  float lo, scale;
  int bin;
};

struct SampleScratch {
  u64 hist[SAMPLE_BINS];       // weight per bin (count or fixed-point mass)
  unsigned cnt[SAMPLE_BINS];   // tokens per bin
  float cand[SAMPLE_CAP];      // d of the tokens in the bin that crosses the target
  SampleLevel lv[SAMPLE_LEVELS];
  u64 red[32];
  float fred[32];
  u64 above, target;
  int bin, nc;
};

__device__ __forceinline__ bool sample_in_chain(float d, const SampleLevel* lv, int n) {
  for (int l = 0; l < n; l++) {
    if (sample_bin(d, lv[l].lo, lv[l].scale) != lv[l].bin) return false;
  }
  return true;
}

// Sum of the weights of the tokens with key(d) <= k among those in scope and in the chain of n
// bins: from the gathered candidates when fromRow is false, else from the whole row.
__device__ u64 sample_mass_upto(const float* x, int vocab, float maxV, unsigned limitKey,
                                bool weighted, float invT, int n, bool fromRow, unsigned k,
                                SampleScratch& s) {
  u64 m = 0;
  if (fromRow) {
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
      float d = maxV - x[i];
      unsigned key = __float_as_uint(d);
      if (key <= limitKey && key <= k && sample_in_chain(d, s.lv, n)) {
        m += weighted ? sample_weight(d, invT) : 1ull;
      }
    }
  } else {
    for (int j = threadIdx.x; j < s.nc; j += blockDim.x) {
      float d = s.cand[j];
      if (__float_as_uint(d) <= k) m += weighted ? sample_weight(d, invT) : 1ull;
    }
  }
  return block_sum_u64(m, s.red);
}

// The smallest key K such that the tokens in scope (key <= limitKey) with key <= K weigh at least
// the target: count k for top-k (weighted false), ceil(p * total mass) for top-p. That is the
// largest logit threshold whose kept set reaches the target, every token tied at it kept. Instead
// of bisecting over the whole row (about 40 passes of it), it histograms d into SAMPLE_BINS bins,
// finds the bin where the running weight crosses the target, gathers that bin's tokens into
// shared memory and bisects over them; a bin too full to gather is binned again over its own
// range. Returns limitKey when the scope weighs less than the target.
__device__ unsigned sample_threshold(const float* x, int vocab, float maxV, float hi,
                                     unsigned limitKey, bool weighted, float invT, u64 count,
                                     float p, SampleScratch& s) {
  int tid = threadIdx.x, lane = tid & 31;
  float lo = 0.f;
  if (tid == 0) s.above = 0;
  for (int n = 0;; n++) {
    for (int b = tid; b < SAMPLE_BINS; b += blockDim.x) {
      s.hist[b] = 0;
      s.cnt[b] = 0;
    }
    float scale = hi > lo ? (float)SAMPLE_BINS / (hi - lo) : 0.f;
    if (!(scale < 3.0e38f)) scale = 0.f;
    __syncthreads();
    for (int i = tid; i < vocab; i += blockDim.x) {
      float d = maxV - x[i];
      if (__float_as_uint(d) > limitKey || !sample_in_chain(d, s.lv, n)) continue;
      int b = sample_bin(d, lo, scale);
      atomicAdd(&s.cnt[b], 1u);
      if (weighted) atomicAdd(&s.hist[b], sample_weight(d, invT));
    }
    __syncthreads();
    if (!weighted) {
      for (int b = tid; b < SAMPLE_BINS; b += blockDim.x) s.hist[b] = s.cnt[b];
    }
    if (n == 0) {
      u64 part = 0;
      for (int b = tid; b < SAMPLE_BINS; b += blockDim.x) part += weighted ? s.hist[b] : s.cnt[b];
      u64 total = block_sum_u64(part, s.red);
      if (tid == 0) s.target = weighted ? (u64)ceil((double)p * (double)total) : count;
      if (total < (weighted ? 1ull : count)) return limitKey;  // uniform: total is the same everywhere
    }
    __syncthreads();
    // The crossing bin, by warp 0: each lane sums 64 bins, a scan across lanes, then one lane
    // walks its 64.
    if (tid < 32) {
      const int per = SAMPLE_BINS / 32;
      u64 mine = 0;
      for (int b = lane * per; b < (lane + 1) * per; b++) mine += s.hist[b];
      u64 incl = mine;
      for (int o = 1; o < 32; o <<= 1) {
        u64 y = __shfl_up_sync(0xffffffffu, incl, o);
        if (lane >= o) incl += y;
      }
      u64 above = s.above, target = s.target;
      unsigned hit = __ballot_sync(0xffffffffu, above + incl >= target);
      if (hit == 0) {
        if (lane == 0) s.bin = -1;
      } else if (lane == __ffs(hit) - 1) {
        u64 cum = above + incl - mine;
        int c = (lane + 1) * per - 1;
        for (int b = lane * per; b < (lane + 1) * per; b++) {
          if (cum + s.hist[b] >= target) {
            c = b;
            break;
          }
          cum += s.hist[b];
        }
        s.bin = c;
        s.above = cum;
        s.lv[n].lo = lo;
        s.lv[n].scale = scale;
        s.lv[n].bin = c;
        s.nc = 0;
      }
    }
    __syncthreads();
    int c = s.bin;
    if (c < 0) return limitKey;  // cannot happen after level 0 (the bin holds the crossing)
    int levels = n + 1;
    bool fits = s.cnt[c] <= SAMPLE_CAP;
    float dLo = INFINITY, dHi = -INFINITY;
    if (fits) {
      for (int i = tid; i < vocab; i += blockDim.x) {
        float d = maxV - x[i];
        if (__float_as_uint(d) <= limitKey && sample_in_chain(d, s.lv, levels)) {
          int j = atomicAdd(&s.nc, 1);
          s.cand[j] = d;
          dLo = fminf(dLo, d);
          dHi = fmaxf(dHi, d);
        }
      }
    } else {
      for (int i = tid; i < vocab; i += blockDim.x) {
        float d = maxV - x[i];
        if (__float_as_uint(d) <= limitKey && sample_in_chain(d, s.lv, levels)) {
          dLo = fminf(dLo, d);
          dHi = fmaxf(dHi, d);
        }
      }
    }
    dLo = -block_max(-dLo, s.fred);
    dHi = block_max(dHi, s.fred);
    // Every token of the bin tied: the crossing is at their value.
    if (!(dHi > dLo)) return __float_as_uint(dLo);
    if (fits || levels == SAMPLE_LEVELS) {
      // Bisection over the keys the bin spans: from shared memory, or, past SAMPLE_LEVELS (a bin
      // still too full), from the row (the old way, kept so every input terminates).
      unsigned a = __float_as_uint(dLo), z = __float_as_uint(dHi);
      u64 need = s.target - s.above;
      while (a < z) {
        unsigned mid = a + (z - a) / 2;
        u64 m = sample_mass_upto(x, vocab, maxV, limitKey, weighted, invT, levels, !fits, mid, s);
        if (m >= need) z = mid; else a = mid + 1;
      }
      return a;
    }
    lo = dLo;
    hi = dHi;
  }
}

#define SAMPLE_UNROLL 16  // sample's first pass: loads in flight per thread

// One token per row of logits [rows][vocab]. temperature <= 0: greedy (lowest index among equal
// maxima). Otherwise softmax(logits / temperature) restricted to the top-k values (k <= 0: all),
// then to the smallest set of largest probabilities whose share of their mass reaches top_p (>= 1:
// all), then to the tokens at least min_p times as likely as the most likely (0: all), every
// token tied at a threshold kept, sampled with uniform u = splitmix64(seed) in [0, 1) over
// the kept tokens in index order. Thresholds come from sample_threshold (a few passes over the
// row, not one per bisection step). grid: rows, block: SAMPLE_THREADS.
extern "C" __global__ void sample(const float* logits, int vocab, const float* temperature,
                                  const int* topK, const float* topP, const float* minP,
                                  const u64* seeds, int* out) {
  pdl_enter();
  __shared__ float smem[32];
  __shared__ int smemI[32];
  __shared__ float scan[SAMPLE_THREADS];
  __shared__ SampleScratch s;
  const float* x = logits + (long)blockIdx.x * vocab;
  int tid = threadIdx.x;
  float temp = temperature[blockIdx.x];
  // Greedy, the maximum for the softmax, and the lowest finite logit (the first bins' range).
  // SAMPLE_UNROLL independent loads per thread before any comparison: one load at a time left
  // the block latency-bound (54 us for a 128,256-entry row on an H100, session 25's profile).
  // The predicates do not depend on the order of visits, so the result is the same.
  float best = -INFINITY, low = INFINITY;
  int bestI = 0x7fffffff;
  auto visit = [&](float v, int i) {
    if (v > best || (v == best && i < bestI)) {
      best = v;
      bestI = i;
    }
    if (v > -INFINITY) low = fminf(low, v);
  };
  const int step = blockDim.x;
  int i0 = tid;
  for (; i0 + (SAMPLE_UNROLL - 1) * step < vocab; i0 += SAMPLE_UNROLL * step) {
    float vs[SAMPLE_UNROLL];
#pragma unroll
    for (int u = 0; u < SAMPLE_UNROLL; u++) vs[u] = x[i0 + u * step];
#pragma unroll
    for (int u = 0; u < SAMPLE_UNROLL; u++) visit(vs[u], i0 + u * step);
  }
  for (int i = i0; i < vocab; i += step) visit(x[i], i);
  for (int o = 16; o > 0; o >>= 1) {
    float ov = __shfl_xor_sync(0xffffffffu, best, o);
    int oi = __shfl_xor_sync(0xffffffffu, bestI, o);
    if (ov > best || (ov == best && oi < bestI)) {
      best = ov;
      bestI = oi;
    }
  }
  int lane = tid & 31, warp = tid >> 5, warps = blockDim.x >> 5;
  if (lane == 0) {
    smem[warp] = best;
    smemI[warp] = bestI;
  }
  __syncthreads();
  if (warp == 0) {
    best = lane < warps ? smem[lane] : -INFINITY;
    bestI = lane < warps ? smemI[lane] : 0x7fffffff;
    for (int o = 16; o > 0; o >>= 1) {
      float ov = __shfl_xor_sync(0xffffffffu, best, o);
      int oi = __shfl_xor_sync(0xffffffffu, bestI, o);
      if (ov > best || (ov == best && oi < bestI)) {
        best = ov;
        bestI = oi;
      }
    }
    if (lane == 0) {
      smem[0] = best;
      smemI[0] = bestI;
    }
  }
  __syncthreads();
  float maxV = smem[0];
  int argmax = smemI[0];
  __syncthreads();
  low = -block_max(-low, smem);
  if (tid == 0) out[blockIdx.x] = argmax;  // the picker below overwrites it
  // Greedy; and a row without a finite maximum (all -inf, or +inf) keeps its argmax.
  if (!(temp > 0.f) || !(fabsf(maxV) < INFINITY)) return;
  float invT = 1.f / temp;
  float dMax = maxV - low;
  unsigned keep = SAMPLE_INF_KEY;
  int k = topK[blockIdx.x];
  if (k > 0 && k < vocab) {
    keep = sample_threshold(x, vocab, maxV, dMax, SAMPLE_INF_KEY, false, invT, (u64)k, 1.f, s);
  }
  float p = topP[blockIdx.x];
  if (p < 1.f) {
    float hi = fminf(dMax, __uint_as_float(keep));
    keep = sample_threshold(x, vocab, maxV, hi, keep, true, invT, 0, p, s);
  }
  // Min-p: exp(-d / T) >= min_p, i.e. d <= -T ln(min_p); no search needed.
  float mp = minP[blockIdx.x];
  if (mp > 0.f) {
    unsigned floorKey = __float_as_uint(fmaxf(-logf(mp) * temp, 0.f));
    keep = min(keep, floorKey);
  }
  // Inverse CDF over contiguous per-thread chunks, in index order.
  int chunk = (vocab + blockDim.x - 1) / blockDim.x;
  int start = tid * chunk, end = min(vocab, start + chunk);
  float mine = 0.f;
  for (int i = start; i < end; i++) {
    float d = maxV - x[i];
    if (__float_as_uint(d) <= keep) mine += expf(-d * invT);
  }
  scan[tid] = mine;
  __syncthreads();
  for (int o = 1; o < blockDim.x; o <<= 1) {
    float add = tid >= o ? scan[tid - o] : 0.f;
    __syncthreads();
    scan[tid] += add;
    __syncthreads();
  }
  float total = scan[blockDim.x - 1];
  float u = (float)(splitmix64(seeds[blockIdx.x]) >> 40) * (1.f / 16777216.f) * total;
  float before = scan[tid] - mine;
  bool last = tid == blockDim.x - 1;
  if ((u >= before && u < scan[tid]) || (last && u >= scan[tid])) {
    int pick = -1;
    float c = before;
    for (int i = start; i < end; i++) {
      float d = maxV - x[i];
      if (__float_as_uint(d) <= keep) {
        float pr = expf(-d * invT);
        if (pr > 0.f) {
          pick = i;
          c += pr;
          if (u < c) break;
        }
      }
    }
    if (pick >= 0) out[blockIdx.x] = pick;
  }
}

// Fills count elements of dtype with uniform values in [-scale, scale) from a counter-based
// generator: synthetic weights for benchmarks, made on the device instead of uploaded.
extern "C" __global__ void fill_uniform(void* out, int dtype, long count, u64 seed, float scale) {
  pdl_enter();
  for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < count;
       i += (long)gridDim.x * blockDim.x) {
    float u = (float)(splitmix64(seed ^ (u64)i * 0x2545f4914f6cdd1dull) >> 40) *
              (1.f / 16777216.f);
    store_elem(out, i, dtype, (2.f * u - 1.f) * scale);
  }
}

// ---------------------------------------------------------------------------------------------
// Quantized weights (layouts made at upload by QuantizedUpload; the artifact formats stay as
// they are). Every weight row starts at a multiple of ldw bytes, ldw a multiple of 16, so a lane
// reads 16 code bytes with one aligned 128-bit load.
//  - 8-bit codes (fmt 0 = int8, 1 = FP8 E4M3, 2 = FP8 E5M2): w[row * ldw + c], value =
//    scale[row * groupsPerRow + c / groupSize] * decode(code). INT8 per-channel, GGUF Q8_0
//    (groups of 32) and FP8 per-channel or per-tensor (scales expanded per row) all land here.
//  - 4-bit codes: the nibble order of io.kvant.engine.tensor.Int4Tensor (group g of a row starts
//    at byte g * groupSize / 2; in a group of len columns with h = ceil(len / 2), byte j holds
//    element j in its low and element h + j in its high nibble), value =
//    scale[row][g] * (code - zero[row][g]). INT4 group-wise (symmetric: zero 8) and GGUF Q4_0
//    (groups of 32, zero 8) land here.
// The product of a scale and a code is computed exactly as the CPU decoder does (one float
// multiplication), so GPU and CPU see bit-identical weights; only summation order differs.

#define QGEMV_ROWS 8    // activation rows per pass
#define QGEMV_WARPS 8   // output features per block (one per warp)


__device__ __forceinline__ void store_out(float* y, long i, float v, int accumulate) {
  if (accumulate) y[i] += v; else y[i] = v;
}

// y[r][o] (+)= sum_c x[r][c] * W[o][c] for r < n (n <= QGEMV_ROWS), W of 8-bit codes.
// grid: ceil(out / QGEMV_WARPS); block: 32 * QGEMV_WARPS. One warp per output feature reads its
// weight row once for all n rows.
extern "C" __global__ void qgemv8(const unsigned char* w, long ldw, const float* scales,
                                  int groupSize, int groupsPerRow, int fmt, const float* x,
                                  float* y, int out, int in, int n, int accumulate) {
  pdl_enter();
  int lane = threadIdx.x & 31;
  int o = blockIdx.x * QGEMV_WARPS + (threadIdx.x >> 5);
  if (o >= out) return;
  const unsigned char* wr = w + (long)o * ldw;
  const float* sr = scales + (long)o * groupsPerRow;
  // A 16-column chunk has one scale when groups are multiples of 16 or the row is one group.
  bool chunkScale = groupsPerRow == 1 || (groupSize & 15) == 0;
  float acc[QGEMV_ROWS];
#pragma unroll
  for (int r = 0; r < QGEMV_ROWS; r++) acc[r] = 0.f;
  for (int c0 = lane * 16; c0 < in; c0 += 32 * 16) {
    uint4 packed = *(const uint4*)(wr + c0);
    unsigned words[4] = {packed.x, packed.y, packed.z, packed.w};
    if (chunkScale && c0 + 16 <= in) {
      float s = sr[groupsPerRow == 1 ? 0 : c0 / groupSize];
#pragma unroll
      for (int j = 0; j < 16; j++) {
        float v = s * decode8((words[j >> 2] >> ((j & 3) * 8)) & 0xffu, fmt);
#pragma unroll
        for (int r = 0; r < QGEMV_ROWS; r++) {
          if (r < n) acc[r] += v * x[(long)r * in + c0 + j];
        }
      }
    } else {
      for (int j = 0; j < 16 && c0 + j < in; j++) {
        int c = c0 + j;
        float v = sr[c / groupSize] * decode8((words[j >> 2] >> ((j & 3) * 8)) & 0xffu, fmt);
        for (int r = 0; r < QGEMV_ROWS; r++) {
          if (r < n) acc[r] += v * x[(long)r * in + c];
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < QGEMV_ROWS; r++) {
    float t = warp_sum(acc[r]);
    if (lane == 0 && r < n) store_out(y, (long)r * out + o, t, accumulate);
  }
}

// The value of the 4-bit code in byte b (nibble hi) of a group: scale * (code - zero).
__device__ __forceinline__ float decode4(unsigned b, int hi, float s, int z) {
  return s * (float)((int)(hi ? b >> 4 : b & 15u) - z);
}

// As qgemv8 for 4-bit codes (layout above); zeros may be null (symmetric: 8).
extern "C" __global__ void qgemv4(const unsigned char* w, long ldw, const float* scales,
                                  const unsigned char* zeros, int groupSize, int groupsPerRow,
                                  const float* x, float* y, int out, int in, int n,
                                  int accumulate) {
  pdl_enter();
  int lane = threadIdx.x & 31;
  int o = blockIdx.x * QGEMV_WARPS + (threadIdx.x >> 5);
  if (o >= out) return;
  const unsigned char* wr = w + (long)o * ldw;
  const float* sr = scales + (long)o * groupsPerRow;
  const unsigned char* zr = zeros ? zeros + (long)o * groupsPerRow : 0;
  int half = groupSize >> 1;
  int rowBytes = (in + 1) >> 1;
  // Fast chunks: 16 bytes inside one full group (half a multiple of 16).
  bool fastGroups = (half & 15) == 0;
  float acc[QGEMV_ROWS];
#pragma unroll
  for (int r = 0; r < QGEMV_ROWS; r++) acc[r] = 0.f;
  for (int b0 = lane * 16; b0 < rowBytes; b0 += 32 * 16) {
    uint4 packed = *(const uint4*)(wr + b0);
    unsigned words[4] = {packed.x, packed.y, packed.z, packed.w};
    int g = b0 / half;
    int j0 = b0 - g * half;
    int start = g * groupSize;
    if (fastGroups && start + groupSize <= in) {
      float s = sr[g];
      int z = zr ? zr[g] : 8;
      const float* xl = x + start + j0;
      const float* xh = xl + half;
#pragma unroll
      for (int j = 0; j < 16; j++) {
        unsigned b = (words[j >> 2] >> ((j & 3) * 8)) & 0xffu;
        float lo = decode4(b, 0, s, z), hi = decode4(b, 1, s, z);
#pragma unroll
        for (int r = 0; r < QGEMV_ROWS; r++) {
          if (r < n) acc[r] += lo * xl[(long)r * in + j] + hi * xh[(long)r * in + j];
        }
      }
    } else {
      for (int j = 0; j < 16 && b0 + j < rowBytes; j++) {
        int bi = b0 + j;
        int gi = bi / half;
        int ji = bi - gi * half;
        int st = gi * groupSize;
        int len = min(groupSize, in - st);
        int h = (len + 1) >> 1;
        float s = sr[gi];
        int z = zr ? zr[gi] : 8;
        unsigned b = (words[j >> 2] >> ((j & 3) * 8)) & 0xffu;
        float lo = decode4(b, 0, s, z);
        bool hasHi = h + ji < len;
        float hi = hasHi ? decode4(b, 1, s, z) : 0.f;
        for (int r = 0; r < QGEMV_ROWS; r++) {
          if (r < n) {
            acc[r] += lo * x[(long)r * in + st + ji];
            if (hasHi) acc[r] += hi * x[(long)r * in + st + h + ji];
          }
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < QGEMV_ROWS; r++) {
    float t = warp_sum(acc[r]);
    if (lane == 0 && r < n) store_out(y, (long)r * out + o, t, accumulate);
  }
}

// out[r][c] = W[row0 + r][c] as dtype (F16/BF16) for r < rows: the tile that a tensor-core GEMM
// multiplies when many rows share the weights (prefill, large batches). grid-stride.
extern "C" __global__ void dequant8(const unsigned char* w, long ldw, const float* scales,
                                    int groupSize, int groupsPerRow, int fmt, void* out,
                                    int dtype, int row0, int rows, int in) {
  pdl_enter();
  long total = (long)rows * in;
  for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < total;
       i += (long)gridDim.x * blockDim.x) {
    long r = row0 + i / in;
    int c = (int)(i % in);
    float v = scales[r * groupsPerRow + c / groupSize] * decode8(w[r * ldw + c], fmt);
    store_elem(out, i, dtype, v);
  }
}

extern "C" __global__ void dequant4(const unsigned char* w, long ldw, const float* scales,
                                    const unsigned char* zeros, int groupSize, int groupsPerRow,
                                    void* out, int dtype, int row0, int rows, int in) {
  pdl_enter();
  long total = (long)rows * in;
  for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < total;
       i += (long)gridDim.x * blockDim.x) {
    long r = row0 + i / in;
    int c = (int)(i % in);
    int g = c / groupSize;
    int j = c - g * groupSize;
    int len = min(groupSize, in - g * groupSize);
    int h = (len + 1) >> 1;
    unsigned b = w[r * ldw + (long)g * (groupSize >> 1) + (j < h ? j : j - h)];
    long gi = r * groupsPerRow + g;
    float v = decode4(b, j >= h, scales[gi], zeros ? zeros[gi] : 8);
    store_elem(out, i, dtype, v);
  }
}

// count random bytes (each ANDed with mask) from a counter-based generator: the codes of
// synthetic quantized benchmark weights. grid-stride.
extern "C" __global__ void fill_bytes(unsigned char* out, long count, u64 seed, unsigned mask) {
  pdl_enter();
  for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < count;
       i += (long)gridDim.x * blockDim.x) {
    out[i] = (unsigned char)(splitmix64(seed ^ (u64)i * 0x2545f4914f6cdd1dull) >> 56) & mask;
  }
}

// ---------------------------------------------------------------------------------------------
// dequant8/dequant4 for the layouts mgemv reads (a 16-byte run has one scale; for 4-bit whole
// groups, a multiple of 32) with in % 8 == 0, into F16 or BF16 tiles (dtype DT_F16 / DT_BF16) for
// cuBLASLt: one thread per 16-byte run of codes, one 128-bit load, 128-bit stores; the general
// kernels above decode one element per thread with 64-bit index arithmetic and measured ~10x
// slower. F16 is the default tile type: its 10 mantissa bits keep the GPU's perplexities within
// 0.2% of the CPU engine's where BF16 tiles (7 bits) moved them by up to 1% on stories260K.
// grid-stride over rows * ldw / 16 runs.
__device__ __forceinline__ unsigned pack_half(float a, float b, int dtype) {
  if (dtype == DT_F16) return (unsigned)f32_to_f16(a) | ((unsigned)f32_to_f16(b) << 16);
  return (unsigned)f32_to_bf16(a) | ((unsigned)f32_to_bf16(b) << 16);
}

extern "C" __global__ void dequant8_tile(const unsigned char* w, long ldw, const float* scales,
                                         int groupSize, int groupsPerRow, int fmt, u16* out,
                                         int dtype, int row0, int rows, int in) {
  pdl_enter();
  int runs = (int)(ldw >> 4);
  long total = (long)rows * runs;
  for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < total;
       i += (long)gridDim.x * blockDim.x) {
    int r = (int)(i / runs);
    int c = (int)(i - (long)r * runs) * 16;
    if (c >= in) continue;
    long row = row0 + r;
    uint4 p = __ldg((const uint4*)(w + row * ldw + c));
    unsigned words[4] = {p.x, p.y, p.z, p.w};
    float s = scales[row * groupsPerRow + (groupsPerRow == 1 ? 0 : c / groupSize)];
    u16* o = out + (long)r * in + c;
    if (c + 16 <= in) {
      unsigned packed[8];
#pragma unroll
      for (int q = 0; q < 8; q++) {
        unsigned wd = words[q >> 1] >> ((q & 1) * 16);
        packed[q] =
            pack_half(s * decode8(wd & 0xffu, fmt), s * decode8((wd >> 8) & 0xffu, fmt), dtype);
      }
      ((uint4*)o)[0] = make_uint4(packed[0], packed[1], packed[2], packed[3]);
      ((uint4*)o)[1] = make_uint4(packed[4], packed[5], packed[6], packed[7]);
    } else {
      for (int j = 0; c + j < in; j++) {
        float v = s * decode8((words[j >> 2] >> ((j & 3) * 8)) & 0xffu, fmt);
        o[j] = dtype == DT_F16 ? f32_to_f16(v) : f32_to_bf16(v);
      }
    }
  }
}

extern "C" __global__ void dequant4_tile(const unsigned char* w, long ldw, const float* scales,
                                         const unsigned char* zeros, int groupSize,
                                         int groupsPerRow, u16* out, int dtype, int row0,
                                         int rows, int in) {
  pdl_enter();
  int runs = in / 32;  // 16 bytes = 32 values; in is a multiple of the group size (>= 32)
  int half = groupSize >> 1;
  long total = (long)rows * runs;
  for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < total;
       i += (long)gridDim.x * blockDim.x) {
    int r = (int)(i / runs);
    int b = (int)(i - (long)r * runs) * 16;
    long row = row0 + r;
    uint4 p = __ldg((const uint4*)(w + row * ldw + b));
    unsigned words[4] = {p.x, p.y, p.z, p.w};
    int g = b / half;
    int j0 = b - g * half;
    long gi = row * groupsPerRow + g;
    float s = scales[gi];
    int z = zeros ? zeros[gi] : 8;
    u16* lo = out + (long)r * in + g * groupSize + j0;
    unsigned pl[8], ph[8];
#pragma unroll
    for (int q = 0; q < 8; q++) {
      unsigned wd = words[q >> 1] >> ((q & 1) * 16);
      pl[q] = pack_half(decode4(wd & 0xffu, 0, s, z), decode4((wd >> 8) & 0xffu, 0, s, z), dtype);
      ph[q] = pack_half(decode4(wd & 0xffu, 1, s, z), decode4((wd >> 8) & 0xffu, 1, s, z), dtype);
    }
    ((uint4*)lo)[0] = make_uint4(pl[0], pl[1], pl[2], pl[3]);
    ((uint4*)lo)[1] = make_uint4(pl[4], pl[5], pl[6], pl[7]);
    ((uint4*)(lo + half))[0] = make_uint4(ph[0], ph[1], ph[2], ph[3]);
    ((uint4*)(lo + half))[1] = make_uint4(ph[4], ph[5], ph[6], ph[7]);
  }
}

// ---------------------------------------------------------------------------------------------
// mgemv: the decode product for 1..MG_ROWS F32 activation rows, y[r][o] (+)= sum_c x[r][c] W[o][c],
// for every weight kind (8-bit codes, 4-bit codes, BF16, F16). What bounds a GEMV here is not the
// weight stream but the work per weight byte, so:
//  - one warp computes F consecutive output features; lane l walks the 16-byte runs l, l + 32, ...
//    of those F rows, U runs ahead, all F * U loads issued together and marked L1::no_allocate
//    (each weight byte is used once; the activations keep L1 for themselves);
//  - each activation float4 is loaded once per run for all F features (the first version, one
//    warp per feature, loaded it per feature and read quantized rows at 0.6-1.2 TB/s);
//  - codes become floats by integer tricks, not conversion instructions: an unsigned byte or nibble
//    u placed in the mantissa of 2^23 (0x4B000000 | u, one byte_perm) is 2^23 + u exactly, and one
//    subtraction of 2^23 + zero gives the code minus its zero, exact; FP8 E4M3 pairs convert to
//    half2 in one instruction where the architecture has it (sm_89+), E5M2 is an F16 with the low
//    byte cut off; BF16 is the high half of an F32;
//  - the scale of a run (a group or the row) multiplies the run's partial sums, not each weight.
// Kinds: MG_I8, MG_E4M3, MG_E5M2 (8-bit codes, format as decode8), MG_I4 (layout of the 4-bit
// codes above, zero point per group or 8), MG_BF16, MG_F16 (dense rows of ldw bytes).
// Preconditions (checked on the Java side): n <= MG_ROWS; a 16-byte run has one scale (8-bit: one
// group per row, or groups a multiple of 16 columns; 4-bit: groups a multiple of 32 columns);
// in a multiple of 16 (8-bit), of 8 (dense) or of the group size (4-bit); ldw a multiple of 16.
#define MG_ROWS 4
#define MG_WARPS 4
#define MG_I8 0
#define MG_E4M3 1
#define MG_E5M2 2
#define MG_I4 3
#define MG_BF16 4
#define MG_F16 5

__device__ __forceinline__ uint4 ld_stream16(const unsigned char* p) {
  uint4 v;
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(p));
  return v;
}

// byte k of w as 2^23 + byte (a float)
__device__ __forceinline__ float mg_byte(unsigned w, int k) {
  return __uint_as_float(__byte_perm(w, 0x4B000000u, 0x7540u + k));
}

__device__ __forceinline__ float mg_h2f_lo(unsigned h2) {
  return f16_to_f32((u16)(h2 & 0xffffu));
}

__device__ __forceinline__ float mg_h2f_hi(unsigned h2) {
  return f16_to_f32((u16)(h2 >> 16));
}

// Four decoded values of word q of a run (before the run's scale): for 4-bit codes, part 0 is the
// low nibbles, part 1 the high nibbles. bias = 2^23 + zero (integer kinds).
template <int KIND>
__device__ __forceinline__ void mg_decode4(unsigned w, int part, float bias, float (&v)[4]) {
  if (KIND == MG_I8) {
    unsigned u = w ^ 0x80808080u;  // signed codes as unsigned + 128 (bias holds the 128)
#pragma unroll
    for (int k = 0; k < 4; k++) v[k] = mg_byte(u, k) - bias;
  } else if (KIND == MG_I4) {
    unsigned u = part == 0 ? (w & 0x0F0F0F0Fu) : ((w >> 4) & 0x0F0F0F0Fu);
#pragma unroll
    for (int k = 0; k < 4; k++) v[k] = mg_byte(u, k) - bias;
  } else if (KIND == MG_E5M2) {
    unsigned h01 = __byte_perm(w, 0u, 0x1404u), h23 = __byte_perm(w, 0u, 0x3424u);
    v[0] = mg_h2f_lo(h01); v[1] = mg_h2f_hi(h01); v[2] = mg_h2f_lo(h23); v[3] = mg_h2f_hi(h23);
  } else if (KIND == MG_E4M3) {
#if __CUDA_ARCH__ >= 890
    unsigned h01, h23;
    asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(h01) : "h"((u16)(w & 0xffffu)));
    asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(h23) : "h"((u16)(w >> 16)));
    v[0] = mg_h2f_lo(h01); v[1] = mg_h2f_hi(h01); v[2] = mg_h2f_lo(h23); v[3] = mg_h2f_hi(h23);
#else
#pragma unroll
    for (int k = 0; k < 4; k++) v[k] = decode8((w >> (8 * k)) & 0xffu, QF_E4M3);
#endif
  }
}

// Columns c..c+3 of the N input rows, through the read-only cache. NORM: the RMSNorm is folded in:
// each value's square is added to ss[r] (every column of a row passes one warp group once, so ss
// ends as the row's sum of squares after mg_reduce) and the value is multiplied by the norm weight
// g[c]; the caller scales the dot products by the row's inverse RMS.
template <int N, bool NORM>
__device__ __forceinline__ void mg_ldx(const float* x, int in, int c, const float* g,
                                       float (&ss)[N], float4 (&xv)[N]) {
  float4 gv;
  if (NORM) gv = __ldg((const float4*)(g + c));
#pragma unroll
  for (int r = 0; r < N; r++) {
    float4 v = __ldg((const float4*)(x + (long)r * in + c));
    if (NORM) {
      ss[r] += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
      v.x *= gv.x; v.y *= gv.y; v.z *= gv.z; v.w *= gv.w;
    }
    xv[r] = v;
  }
}

// The body of every mgemv kernel: this lane's partial sums acc[f][r] of the rows wr[f] (byte
// pointers to the F weight rows), their scales sr[f] and zero points zr[f] (per group; zr[f] null:
// zero point 8; both unused for dense kinds), against the N input rows x[r * in ..] (NORM: times
// the norm weights g, with each row's sum of squares in ss; see mg_ldx). With KS > 1 the KS warps of a block share the rows and split their bytes:
// warp k of a group takes the 512-byte runs k, k + KS, ... (each lane 16 bytes of a run). The
// caller reduces over the warp (and the KS warps: mg_reduce).
template <int KIND, int N, int F, int U, bool NORM, int KS>
__device__ __forceinline__ void mg_rows(const unsigned char* const (&wr)[F],
                                        const float* const (&sr)[F],
                                        const unsigned char* const (&zr)[F], int groupSize,
                                        int groupsPerRow, const float* x, int in, const float* g,
                                        float (&ss)[N], float (&acc)[F][N]) {
  int lane = threadIdx.x & 31;
  const int kpart = KS > 1 ? (threadIdx.x >> 5) % KS : 0;
  const int RUN = 512 * KS;  // bytes between one warp's consecutive runs
  const int dense = KIND == MG_BF16 || KIND == MG_F16;
  const int rowBytes = KIND == MG_I4 ? in / 2 : (dense ? 2 * in : in);
  const int half = groupSize >> 1;
#pragma unroll
  for (int f = 0; f < F; f++)
#pragma unroll
    for (int r = 0; r < N; r++) acc[f][r] = 0.f;
#pragma unroll
  for (int r = 0; r < N; r++) ss[r] = 0.f;

  for (int b0 = kpart * 512 + lane * 16; b0 < rowBytes; b0 += RUN * U) {
    uint4 p[U][F];
#pragma unroll
    for (int u = 0; u < U; u++)
#pragma unroll
      for (int f = 0; f < F; f++)
        if (b0 + u * RUN < rowBytes) p[u][f] = ld_stream16(wr[f] + b0 + u * RUN);
#pragma unroll
    for (int u = 0; u < U; u++) {
      int b = b0 + u * RUN;
      if (b >= rowBytes) break;
      if (dense) {
        int c = b >> 1;  // 8 elements: words 0..3, two per word
#pragma unroll
        for (int h = 0; h < 2; h++) {
          float4 xv[N];
          mg_ldx<N, NORM>(x, in, c + 4 * h, g, ss, xv);
#pragma unroll
          for (int f = 0; f < F; f++) {
            unsigned a0 = h == 0 ? p[u][f].x : p[u][f].z, a1 = h == 0 ? p[u][f].y : p[u][f].w;
            float v0, v1, v2, v3;
            if (KIND == MG_BF16) {
              v0 = __uint_as_float(a0 << 16); v1 = __uint_as_float(a0 & 0xffff0000u);
              v2 = __uint_as_float(a1 << 16); v3 = __uint_as_float(a1 & 0xffff0000u);
            } else {
              v0 = mg_h2f_lo(a0); v1 = mg_h2f_hi(a0); v2 = mg_h2f_lo(a1); v3 = mg_h2f_hi(a1);
            }
#pragma unroll
            for (int r = 0; r < N; r++)
              acc[f][r] += v0 * xv[r].x + v1 * xv[r].y + v2 * xv[r].z + v3 * xv[r].w;
          }
        }
      } else {
        // the columns of the run and its scale (and zero) per feature
        int c0, cHigh = 0;
        float s[F], bias[F];
        if (KIND == MG_I4) {
          int g = b / half;
          c0 = g * groupSize + (b - g * half);
          cHigh = c0 + half;
#pragma unroll
          for (int f = 0; f < F; f++) {
            s[f] = sr[f][g];
            bias[f] = 8388608.f + (float)(zr[f] ? zr[f][g] : 8);
          }
        } else {
          c0 = b;
          int g = groupsPerRow == 1 ? 0 : b / groupSize;
#pragma unroll
          for (int f = 0; f < F; f++) {
            s[f] = sr[f][g];
            // E4M3 as half is exact; its values need no rescale (decode8 is value * 2^0 here)
            bias[f] = 8388608.f + 128.f;
          }
        }
        float part[F][N];
#pragma unroll
        for (int f = 0; f < F; f++)
#pragma unroll
          for (int r = 0; r < N; r++) part[f][r] = 0.f;
        // 16 bytes: 4 words of 4 codes (8-bit: columns c0 + 4q..; 4-bit: low nibbles at
        // c0 + 4q.., high nibbles at cHigh + 4q..)
#pragma unroll
        for (int q = 0; q < 4; q++) {
#pragma unroll
          for (int part_i = 0; part_i < (KIND == MG_I4 ? 2 : 1); part_i++) {
            int c = (part_i == 0 ? c0 : cHigh) + 4 * q;
            float4 xv[N];
            mg_ldx<N, NORM>(x, in, c, g, ss, xv);
#pragma unroll
            for (int f = 0; f < F; f++) {
              unsigned wd = q == 0 ? p[u][f].x : q == 1 ? p[u][f].y : q == 2 ? p[u][f].z : p[u][f].w;
              float v[4];
              mg_decode4<KIND>(wd, part_i, bias[f], v);
#pragma unroll
              for (int r = 0; r < N; r++)
                part[f][r] += v[0] * xv[r].x + v[1] * xv[r].y + v[2] * xv[r].z + v[3] * xv[r].w;
            }
          }
        }
#pragma unroll
        for (int f = 0; f < F; f++)
#pragma unroll
          for (int r = 0; r < N; r++) acc[f][r] += s[f] * part[f][r];
      }
    }
  }
}

// Prefetches into L2 the first pass of mg_rows over the rows wr[f] (this lane's 16-byte runs).
template <int KIND, int F, int U, int KS>
__device__ __forceinline__ void mg_prefetch(const unsigned char* const (&wr)[F], int in) {
  const int rowBytes = KIND == MG_I4 ? in / 2 : (KIND == MG_BF16 || KIND == MG_F16 ? 2 * in : in);
  const int kpart = KS > 1 ? (threadIdx.x >> 5) % KS : 0;
  int b0 = kpart * 512 + (threadIdx.x & 31) * 16;
#pragma unroll
  for (int u = 0; u < U; u++)
#pragma unroll
    for (int f = 0; f < F; f++)
      if (b0 + u * 512 * KS < rowBytes)
        asm volatile("prefetch.global.L2 [%0];" ::"l"(wr[f] + b0 + u * 512 * KS));
}

// Sums each acc[f][r] over the warp and, with KS > 1, over the KS warps of the block that split
// the rows' bytes (in a fixed order, through kred: MG_WARPS * F * N floats of shared memory).
// Every thread of the block must call it. Returns whether this warp holds the totals (all its
// lanes do).
template <int F, int N, int KS>
__device__ __forceinline__ bool mg_reduce(float (&acc)[F][N], float* kred) {
#pragma unroll
  for (int f = 0; f < F; f++)
#pragma unroll
    for (int r = 0; r < N; r++) acc[f][r] = warp_sum(acc[f][r]);
  if (KS == 1) return true;
  int kpart = (threadIdx.x >> 5) % KS;
  if ((threadIdx.x & 31) == 0)
#pragma unroll
    for (int f = 0; f < F; f++)
#pragma unroll
      for (int r = 0; r < N; r++) kred[(kpart * F + f) * N + r] = acc[f][r];
  __syncthreads();
  if (kpart == 0)
#pragma unroll
    for (int f = 0; f < F; f++)
#pragma unroll
      for (int r = 0; r < N; r++) {
        float t = 0.f;
        for (int k = 0; k < KS; k++) t += kred[(k * F + f) * N + r];
        acc[f][r] = t;
      }
  __syncthreads();
  return kpart == 0;
}

// The weight, scale and zero-point pointers of output row `row` of a matrix (scales, zeros per
// group; null stays null).
__device__ __forceinline__ void mg_row(const unsigned char* w, const float* scales,
                                       const unsigned char* zeros, long row, long ldw,
                                       int groupsPerRow, const unsigned char*& wr, const float*& sr,
                                       const unsigned char*& zr) {
  wr = w + row * ldw;
  sr = scales ? scales + row * groupsPerRow : nullptr;
  zr = zeros ? zeros + row * groupsPerRow : nullptr;
}

// KS: 1 (each warp its own F rows) or MG_WARPS (the block's warps split the bytes of F rows; more
// warps in flight for matrices of few, long rows).
template <int KIND, int N, int F, int U, int KS>
__device__ __forceinline__ void mgemv_impl(const unsigned char* w, long ldw, const float* scales,
                                           const unsigned char* zeros, int groupSize,
                                           int groupsPerRow, const float* x, float* y, int out,
                                           int in, int accumulate) {
  static_assert(KS == 1 || KS == MG_WARPS, "a block's warps split K all together or not at all");
  __shared__ float kred[KS > 1 ? MG_WARPS * F * N : 1];
  int lane = threadIdx.x & 31;
  int o0 = (blockIdx.x * (MG_WARPS / KS) + (threadIdx.x >> 5) / KS) * F;
  pdl_launch_next();
  // uniform over the block when KS > 1 (all its warps share o0), so mg_reduce's barriers hold
  if (o0 >= out) return;
  const unsigned char* wr[F];
  const float* sr[F];
  const unsigned char* zr[F];
#pragma unroll
  for (int f = 0; f < F; f++)
    mg_row(w, scales, zeros, min(o0 + f, out - 1), ldw, groupsPerRow, wr[f], sr[f], zr[f]);
  // the weights are immutable: start pulling this warp's first runs into L2 while the previous
  // kernel finishes, then wait for it before reading the activations
  mg_prefetch<KIND, F, U, KS>(wr, in);
  pdl_wait_previous();
  float acc[F][N], ss[N];
  mg_rows<KIND, N, F, U, false, KS>(wr, sr, zr, groupSize, groupsPerRow, x, in, nullptr, ss, acc);
  if (!mg_reduce<F, N, KS>(acc, kred)) return;
#pragma unroll
  for (int f = 0; f < F; f++)
#pragma unroll
    for (int r = 0; r < N; r++)
      if (lane == f * N + r && o0 + f < out)
        store_out(y, (long)r * out + o0 + f, acc[f][r], accumulate);
}

// One kernel per kind and (F, U, KS) variant, rows dispatched inside. grid: ceil(out / (F *
// MG_WARPS / KS)), block: 32 * MG_WARPS.
#define MGEMV_KERNEL(NAME, KIND, F, U, KS)                                                      \
  extern "C" __global__ void __launch_bounds__(32 * MG_WARPS)                                   \
      NAME(const unsigned char* w, long ldw, const float* scales, const unsigned char* zeros,    \
           int groupSize, int groupsPerRow, const float* x, float* y, int out, int in, int n,    \
           int accumulate) {                                                                     \
    if (n <= 1)                                                                                  \
      mgemv_impl<KIND, 1, F, U, KS>(w, ldw, scales, zeros, groupSize, groupsPerRow, x, y, out, in,   \
                                accumulate);                                                     \
    else if (n == 2)                                                                             \
      mgemv_impl<KIND, 2, F, U, KS>(w, ldw, scales, zeros, groupSize, groupsPerRow, x, y, out, in,   \
                                accumulate);                                                     \
    else if (n == 3)                                                                             \
      mgemv_impl<KIND, 3, F, U, KS>(w, ldw, scales, zeros, groupSize, groupsPerRow, x, y, out, in,   \
                                accumulate);                                                     \
    else                                                                                         \
      mgemv_impl<KIND, 4, F, U, KS>(w, ldw, scales, zeros, groupSize, groupsPerRow, x, y, out, in,   \
                                accumulate);                                                     \
  }

#define MGEMV_VARIANTS(KIND, SUFFIX)                     \
  MGEMV_KERNEL(mgemv_##SUFFIX##_f2u2, KIND, 2, 2, 1)         \
  MGEMV_KERNEL(mgemv_##SUFFIX##_f4u2, KIND, 4, 2, 1)         \
  MGEMV_KERNEL(mgemv_##SUFFIX##_f4u1, KIND, 4, 1, 1)         \
  MGEMV_KERNEL(mgemv_##SUFFIX##_f1u4, KIND, 1, 4, 1)         \
  MGEMV_KERNEL(mgemv_##SUFFIX##_f4u1k4, KIND, 4, 1, MG_WARPS) \
  MGEMV_KERNEL(mgemv_##SUFFIX##_f2u2k4, KIND, 2, 2, MG_WARPS)

MGEMV_VARIANTS(MG_I8, i8)
MGEMV_VARIANTS(MG_E4M3, e4m3)
MGEMV_VARIANTS(MG_E5M2, e5m2)
MGEMV_VARIANTS(MG_I4, i4)
MGEMV_VARIANTS(MG_BF16, bf16)
MGEMV_VARIANTS(MG_F16, f16)

// ---------------------------------------------------------------------------------------------
// mgemv_fused: the decode products of a layer that share their input, in one launch: up to three
// matrices of one kind and layout (q, k and v; or gate and up), so the small ones (k, v: 1,024
// rows of the 8B shape) no longer run as grids too small to keep the memory busy, and
//  - NORM (normW non-null): the input rows are RMS-normalised on the way, as the rmsnorm kernel
//    defines it (w * (x * inv), inv = 1 / sqrt(mean(x^2) + eps) in double): each warp group
//    multiplies the activations it loads by w, sums their squares (it loads every column of a row
//    once) and scales its dot products by inv at the end; no norm launch, no staging;
//  - swiglu: matrices 0 and 1 are gate and up with the same rows; each warp computes F/2 rows of
//    each and writes silu(gate) * up (as the swiglu kernel) to y0, F32.
// Matrix m has mOut rows, its weights at mW (rows ldw bytes apart), scales mS and zero points mZ
// (per group, as mgemv), output mY ([n][mOut] F32). Blocks: matrix 0 first (ceil(out0 / (F *
// MG_WARPS / KS)) row blocks; with swiglu ceil(out0 / (F / 2 * MG_WARPS / KS))), then matrix 1
// (not in swiglu), then matrix 2; any grid size covers them all (blocks stride over the row
// blocks). KS as mgemv. Preconditions as mgemv, plus F even for swiglu.
template <int KIND, int N, int F, int U, bool NORM, int KS>
__device__ __forceinline__ void mgemv_fused_impl(
    const unsigned char* w0, const float* s0, const unsigned char* z0, float* y0, int out0,
    const unsigned char* w1, const float* s1, const unsigned char* z1, float* y1, int out1,
    const unsigned char* w2, const float* s2, const unsigned char* z2, float* y2, int out2,
    long ldw, int groupSize, int groupsPerRow, const float* x, int in, int accumulate,
    const float* normW, float eps, int swiglu) {
  static_assert(KS == 1 || KS == MG_WARPS, "a block's warps split K all together or not at all");
  // the dot products and, with NORM, each row's sum of squares (row F of the reduction)
  __shared__ float kred[KS > 1 ? MG_WARPS * (F + 1) * N : 1];
  pdl_enter();
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int rowsPerWarp = swiglu ? F / 2 : F;
  const int groups = MG_WARPS / KS;  // warp groups per block, each on its own rows
  int blocks0 = (out0 + rowsPerWarp * groups - 1) / (rowsPerWarp * groups);
  int blocks1 = swiglu ? 0 : (out1 + F * groups - 1) / (F * groups);
  int blocks2 = (out2 + F * groups - 1) / (F * groups);
  // A grid of about one wave loops over the row blocks.
  for (int bb = blockIdx.x; bb < blocks0 + blocks1 + blocks2; bb += gridDim.x) {
    int b = bb;
    const unsigned char* w = w0; const float* sc = s0; const unsigned char* zp = z0; float* y = y0;
    int out = out0;
    if (b >= blocks0 + blocks1) {
      b -= blocks0 + blocks1; w = w2; sc = s2; zp = z2; y = y2; out = out2;
    } else if (b >= blocks0) {
      b -= blocks0; w = w1; sc = s1; zp = z1; y = y1; out = out1;
    }
    int o0 = (b * groups + warp / KS) * rowsPerWarp;
    if (o0 >= out) continue;  // uniform over the block when KS > 1
    const unsigned char* wr[F];
    const float* sr[F];
    const unsigned char* zr[F];
#pragma unroll
    for (int f = 0; f < F; f++) {
      // with swiglu, features F/2.. are the up rows of the same indices
      int up = swiglu && f >= F / 2;
      mg_row(up ? w1 : w, up ? s1 : sc, up ? z1 : zp, min(o0 + (up ? f - F / 2 : f), out - 1), ldw,
             groupsPerRow, wr[f], sr[f], zr[f]);
    }
    float all[F + 1][N];
    mg_rows<KIND, N, F, U, NORM, KS>(wr, sr, zr, groupSize, groupsPerRow, x, in, normW, all[F],
                                     *reinterpret_cast<float(*)[F][N]>(&all[0]));
    if (!mg_reduce<F + 1, N, KS>(all, kred)) continue;
    float acc[F][N];
#pragma unroll
    for (int r = 0; r < N; r++) {
      float inv = NORM ? (float)(1.0 / sqrt((double)(all[F][r] / in + eps))) : 1.f;
#pragma unroll
      for (int f = 0; f < F; f++) acc[f][r] = NORM ? all[f][r] * inv : all[f][r];
    }
    if (swiglu) {
#pragma unroll
      for (int f = 0; f < F / 2; f++)
#pragma unroll
        for (int r = 0; r < N; r++) {
          float g = acc[f][r];
          float u = acc[f + F / 2][r];
          if (lane == f * N + r && o0 + f < out)
            y[(long)r * out + o0 + f] = g / (1.f + expf(-g)) * u;
        }
      continue;
    }
#pragma unroll
    for (int f = 0; f < F; f++)
#pragma unroll
      for (int r = 0; r < N; r++)
        if (lane == f * N + r && o0 + f < out)
          store_out(y, (long)r * out + o0 + f, acc[f][r], accumulate);
  }
}

#define MG_FUSED_ARGS                                                                          \
  w0, s0, z0, y0, out0, w1, s1, z1, y1, out1, w2, s2, z2, y2, out2, ldw, groupSize,            \
      groupsPerRow, x, in, accumulate, normW, eps, swiglu
#define MG_FUSED_CASE(N, F, U, KS)                                                             \
  if (normW) mgemv_fused_impl<KIND_, N, F, U, true, KS>(MG_FUSED_ARGS);                        \
  else mgemv_fused_impl<KIND_, N, F, U, false, KS>(MG_FUSED_ARGS);

// Fused kernels per kind and work split (named as mgemv's variants; the set per kind is what
// CudaKernels.MgVariant.fused lists).
#define MGEMV_FUSED_KERNEL(NAME, KIND, F, U, KS)                                                 \
  extern "C" __global__ void __launch_bounds__(32 * MG_WARPS) NAME(                             \
      const unsigned char* w0, const float* s0, const unsigned char* z0, float* y0, int out0,    \
      const unsigned char* w1, const float* s1, const unsigned char* z1, float* y1, int out1,    \
      const unsigned char* w2, const float* s2, const unsigned char* z2, float* y2, int out2,    \
      long ldw, int groupSize, int groupsPerRow, const float* x, int in, int n, int accumulate, \
      const float* normW, float eps, int swiglu) {                                               \
    const int KIND_ = KIND;                                                                      \
    if (n <= 1) { MG_FUSED_CASE(1, F, U, KS) }                                                   \
    else if (n == 2) { MG_FUSED_CASE(2, F, U, KS) }                                              \
    else if (n == 3) { MG_FUSED_CASE(3, F, U, KS) }                                              \
    else { MG_FUSED_CASE(4, F, U, KS) }                                                          \
  }

#define MGEMV_FUSED_CODES(KIND, SUFFIX)                                        \
  MGEMV_FUSED_KERNEL(mgemv_fused_##SUFFIX##_f4u2, KIND, 4, 2, 1)               \
  MGEMV_FUSED_KERNEL(mgemv_fused_##SUFFIX##_f4u1, KIND, 4, 1, 1)               \
  MGEMV_FUSED_KERNEL(mgemv_fused_##SUFFIX##_f4u1k4, KIND, 4, 1, MG_WARPS)
#define MGEMV_FUSED_DENSE(KIND, SUFFIX)                                        \
  MGEMV_FUSED_KERNEL(mgemv_fused_##SUFFIX##_f2u2, KIND, 2, 2, 1)               \
  MGEMV_FUSED_KERNEL(mgemv_fused_##SUFFIX##_f2u2k4, KIND, 2, 2, MG_WARPS)      \
  MGEMV_FUSED_KERNEL(mgemv_fused_##SUFFIX##_f4u1, KIND, 4, 1, 1)               \
  MGEMV_FUSED_KERNEL(mgemv_fused_##SUFFIX##_f4u1k4, KIND, 4, 1, MG_WARPS)

MGEMV_FUSED_CODES(MG_I8, i8)
MGEMV_FUSED_CODES(MG_E4M3, e4m3)
MGEMV_FUSED_CODES(MG_E5M2, e5m2)
MGEMV_FUSED_CODES(MG_I4, i4)
MGEMV_FUSED_DENSE(MG_BF16, bf16)
MGEMV_FUSED_DENSE(MG_F16, f16)

// ---------------------------------------------------------------------------------------------
// mq4: INT4 decode products on the tensor cores, 1..MQ_ROWS F32 activation rows. The weights are
// in the tiled INT4 layout (QuantizedLayout, tiled = true), made at upload so that one 16-byte load
// per lane is four A fragments of mma.m16n8k16 (F16, F32 accumulate):
//  - rows in tiles of 16 (the last padded), each tile's columns in chunks of 64, a chunk as 512
//    bytes: lane l (g = l / 4, t = l % 4) holds 16 bytes, word j = 0..3 for the k-tile of columns
//    64 kc + 16 j ..;
//  - nibble i (bits 4i..4i+3, i = 0..7) of that word is W[16 rt + g + 8 (i & 1)][64 kc + 16 j + 4 t
//    + pos(i)], pos(i) = (i & 2) + (i >> 2): two masks per register give the fragment's half2
//    pairs (rows g and g + 8, the logical columns 2t, 2t + 1, 2t + 8, 2t + 9 of the k-tile stored
//    at 4t .. 4t + 3; the activations are loaded in the same order, so the dot product is the
//    same sum);
//  - a nibble OR 0x6400 is the F16 1024 + code, exactly; one sub.f16x2 of 1024 + zero (or, for the
//    nibble four bits up, one fma.f16x2 by 1/16 less 64 + zero) leaves code - zero, exact. So the
//    integer part is exact in F16, the products and sums are F32 (mma), and the group's F32 scale
//    multiplies each group's partial sums, as mgemv does.
// The activations become F16 on the way (W4A16, as tinygemm and Marlin take them): the one change
// of numerics against mgemv, which keeps them F32.
// Every A fragment is one mma for up to 8 activation rows (the 8 columns of the mma's B operand),
// two mmas for 9-16 rows (mq4x2_*), four for 17-32 (mq4x4_*, eight warps with four chunks in
// flight only: sixteen warps' reduction buffers would pass the 48 KiB of static shared memory):
// decoding two values costs about one instruction, where mgemv spends three per value and row.
// Block: MQ_KS warps on one 16-row tile, warp w taking the chunks w, w + KS, ... (U in flight),
// the warps' partial sums reduced in a fixed order. Matrices and options as mgemv_fused (up to
// three matrices of one layout, the RMSNorm folded in when normW is set, gate/up + SwiGLU).
// Preconditions (Java side): in a multiple of 64, the group size a power of two >= 32 dividing in
// (groupShift its log2; MQ_ROW_GROUP: one group per row), n <= MQ_ROWS.
#define MQ_ROWS 32
#define MQ_ROW_GROUP 30

__device__ __forceinline__ unsigned mq_nib(unsigned w, unsigned mask) {
  unsigned r;  // (w & mask) | 0x64006400
  asm("lop3.b32 %0, %1, %2, %3, 0xea;" : "=r"(r) : "r"(w), "r"(mask), "r"(0x64006400u));
  return r;
}

__device__ __forceinline__ unsigned mq_hsub2(unsigned a, unsigned b) {
  unsigned r;
  asm("sub.rn.f16x2 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(b));
  return r;
}

__device__ __forceinline__ unsigned mq_hfma2(unsigned a, unsigned b, unsigned c) {
  unsigned r;
  asm("fma.rn.f16x2 %0, %1, %2, %3;" : "=r"(r) : "r"(a), "r"(b), "r"(c));
  return r;
}

// (lo, hi) as F16x2, round to nearest even
__device__ __forceinline__ unsigned mq_pack(float lo, float hi) {
  unsigned r;
  asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}

__device__ __forceinline__ void mq_mma(float (&c)[4], const unsigned (&a)[4], unsigned b0,
                                       unsigned b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// The A fragment of word q: a[0], a[2] row g (less zlo = F16x2 of 1024 + its zero), a[1], a[3] row
// g + 8 (zhi = F16x2 of -(64 + its zero)).
__device__ __forceinline__ void mq_dequant(unsigned q, unsigned zlo, unsigned zhi,
                                           unsigned (&a)[4]) {
  const unsigned sixteenth = 0x2C002C00u;  // 1/16
  unsigned q2 = q >> 8;
  a[0] = mq_hsub2(mq_nib(q, 0x000F000Fu), zlo);
  a[1] = mq_hfma2(mq_nib(q, 0x00F000F0u), sixteenth, zhi);
  a[2] = mq_hsub2(mq_nib(q2, 0x000F000Fu), zlo);
  a[3] = mq_hfma2(mq_nib(q2, 0x00F000F0u), sixteenth, zhi);
}

// mq8: the same for 8-bit codes (INT8 per-channel or in groups, as GGUF Q8_0; FP8 E4M3 with
// per-row scales), each code exact in F16. Tiled 8-bit layout: rows in tiles of 16, columns in
// chunks of 32 (two k-tiles), a chunk as 512 bytes; lane l (g = l / 4, t = l % 4) holds 16 bytes,
// word 2 kt + h (kt = 0, 1 the k-tile, h = 0, 1 the row half) = the four bytes W[16 rt + g + 8 h]
// [32 kc + 16 kt + 4 t .. + 3], in column order. Bytes 0-1 of a word are the fragment's pair a[h]
// (logical columns 2t, 2t + 1), bytes 2-3 the pair a[2 + h] (2t + 8, 2t + 9): the same column
// permutation as the 4-bit layout, so a lane's activations of a k-tile are one float4. E4M3 pairs
// become F16x2 in one cvt; INT8 bytes (flipped to unsigned) are put under 0x64 as nibbles are and
// 1024 + 128 taken off. Groups: one per chunk at most (power of two >= 32), or one per row
// (groupShift MQ_ROW_GROUP).
#define MQC_I4 0
#define MQC_I8 1
#define MQC_E4M3 2

// The A fragment of the k-tile whose words are wa (row g) and wb (row g + 8), 8-bit codes.
template <int CODE>
__device__ __forceinline__ void mq8_dequant(unsigned wa, unsigned wb, unsigned (&a)[4]) {
  if (CODE == MQC_E4M3) {
#if __CUDA_ARCH__ >= 890
    asm("{\n .reg .b16 l, h;\n mov.b32 {l, h}, %4;\n cvt.rn.f16x2.e4m3x2 %0, l;\n"
        " cvt.rn.f16x2.e4m3x2 %2, h;\n mov.b32 {l, h}, %5;\n cvt.rn.f16x2.e4m3x2 %1, l;\n"
        " cvt.rn.f16x2.e4m3x2 %3, h;\n}"
        : "=r"(a[0]), "=r"(a[1]), "=r"(a[2]), "=r"(a[3])
        : "r"(wa), "r"(wb));
#else
    unsigned v[4] = {wa, wb, wa >> 16, wb >> 16};
#pragma unroll
    for (int i = 0; i < 4; i++)
      a[i] = mq_pack(decode8(v[i] & 0xffu, QF_E4M3), decode8((v[i] >> 8) & 0xffu, QF_E4M3));
#endif
  } else {
    const unsigned magic = 0x64806480u;  // F16x2 of 1024 + 128
    unsigned ua = wa ^ 0x80808080u, ub = wb ^ 0x80808080u;
    a[0] = mq_hsub2(__byte_perm(ua, 0x64646464u, 0x4140u), magic);
    a[1] = mq_hsub2(__byte_perm(ub, 0x64646464u, 0x4140u), magic);
    a[2] = mq_hsub2(__byte_perm(ua, 0x64646464u, 0x4342u), magic);
    a[3] = mq_hsub2(__byte_perm(ub, 0x64646464u, 0x4342u), magic);
  }
}

// The matrix of this block's tile among the (up to three) of an mq / mqs launch: tile b of it, its
// output y of out rows, and per weight stream (gate and up with SW) this lane's first 16 weight
// bytes wt, the scales st and zero points zt.
template <bool SW, int P>
__device__ __forceinline__ void mq_block_tile(
    const unsigned char* w0, const float* s0, const unsigned char* z0, float* y0, int out0,
    const unsigned char* w1, const float* s1, const unsigned char* z1, float* y1, int out1,
    const unsigned char* w2, const float* s2, const unsigned char* z2, float* y2, int out2,
    long tileBytes, int lane, int& b, float*& y, int& out, const unsigned char* (&wt)[P],
    const float* (&st)[P], const unsigned char* (&zt)[P]) {
  const int tiles0 = (out0 + 15) >> 4;
  const int tiles1 = SW ? 0 : (out1 + 15) >> 4;
  b = blockIdx.x;
  const unsigned char* w = w0; const float* sc = s0; const unsigned char* zp = z0;
  y = y0;
  out = out0;
  if (b >= tiles0 + tiles1) {
    b -= tiles0 + tiles1; w = w2; sc = s2; zp = z2; y = y2; out = out2;
  } else if (b >= tiles0) {
    b -= tiles0; w = w1; sc = s1; zp = z1; y = y1; out = out1;
  }
  wt[0] = w + b * tileBytes + lane * 16; st[0] = sc; zt[0] = zp;
  if (SW) { wt[P - 1] = w1 + b * tileBytes + lane * 16; st[P - 1] = s1; zt[P - 1] = z1; }
}

// Activation row r's outputs o0 and o0 + 8 from the block's sums tot (accumulators e and 2 + e),
// times inv: SwiGLU of gate (tot[0]) and up (tot[1]) with SW, else stored (accumulate: added).
template <bool SW, int P>
__device__ __forceinline__ void mq_store_rows(float* y, int out, int o0, int r,
                                              const float (&tot)[P][4], int e, float inv,
                                              int accumulate) {
#pragma unroll
  for (int h = 0; h < 2; h++) {
    const int o = o0 + 8 * h;
    if (o >= out) continue;
    float v = tot[0][2 * h + e] * inv;
    if (SW) {
      float u = tot[P - 1][2 * h + e] * inv;
      y[(long)r * out + o] = v / (1.f + expf(-v)) * u;
    } else {
      store_out(y, (long)r * out + o, v, accumulate);
    }
  }
}

// Registers bound how many warps hide the memory's latency, so the variants that matter are
// separate kernels: SW (gate/up + SwiGLU: two weight streams) and NORM (the RMSNorm folded in).
// Each chunk first issues every load it needs (weights U chunks ahead, its scales and zero points,
// the activations of its four k-tiles: lanes of rows past n load row n - 1's and zero them, so no
// load sits behind a branch), then decodes and multiplies; k-tiles alternate between two
// accumulators so that consecutive mmas do not wait on each other.
template <int CODE, int KS, int U, bool SW, bool NORM, int NB>
__device__ __forceinline__ void mq_impl(
    const unsigned char* w0, const float* s0, const unsigned char* z0, float* y0, int out0,
    const unsigned char* w1, const float* s1, const unsigned char* z1, float* y1, int out1,
    const unsigned char* w2, const float* s2, const unsigned char* z2, float* y2, int out2,
    int groupShift, int groupsPerRow, const float* x, int in, int n, int accumulate,
    const float* normW, float eps) {
  constexpr int P = SW ? 2 : 1;  // weight streams of the block: one, or gate and up
  constexpr int KT = CODE == MQC_I4 ? 4 : 2;  // k-tiles of 16 columns per 512-byte chunk
  __shared__ float red[KS][P][NB][4][32];
  __shared__ float ssRed[NORM ? KS : 1][8 * NB];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  int b, out;
  float* y;
  const int chunks = in / (16 * KT);
  const unsigned char* wt[P];
  const float* st[P];
  const unsigned char* zt[P];
  mq_block_tile<SW, P>(w0, s0, z0, y0, out0, w1, s1, z1, y1, out1, w2, s2, z2, y2, out2,
                       (long)chunks * 512, lane, b, y, out, wt, st, zt);
  const long row = min(b * 16 + g, out - 1), row8 = min(b * 16 + g + 8, out - 1);
  pdl_launch_next();
  // the weights are immutable: pull this warp's first chunks toward L2 before waiting
#pragma unroll
  for (int u = 0; u < U; u++)
#pragma unroll
    for (int p = 0; p < P; p++)
      if (warp + u * KS < chunks)
        asm volatile("prefetch.global.L2 [%0];" ::"l"(wt[p] + (long)(warp + u * KS) * 512));
  pdl_wait_previous();
  // activation rows g, 8 + g, ... (one per mma of NB): rows past n load row n - 1, zeroed
  bool hasX[NB];
  const float* xr[NB];
#pragma unroll
  for (int nb = 0; nb < NB; nb++) {
    hasX[nb] = 8 * nb + g < n;
    xr[nb] = x + (long)min(8 * nb + g, n - 1) * in + 4 * t;
  }
  const float* gr = NORM ? normW + 4 * t : nullptr;
  const bool g32 = groupShift == 5;
  float acc[P][NB][4], part[P][2][NB][4], ss[NB];
#pragma unroll
  for (int nb = 0; nb < NB; nb++) {
    ss[nb] = 0.f;
#pragma unroll
    for (int p = 0; p < P; p++)
#pragma unroll
      for (int i = 0; i < 4; i++) acc[p][nb][i] = part[p][0][nb][i] = part[p][1][nb][i] = 0.f;
  }
  for (int kc0 = warp; kc0 < chunks; kc0 += KS * U) {
    uint4 wq[U][P];
#pragma unroll
    for (int u = 0; u < U; u++)
#pragma unroll
      for (int p = 0; p < P; p++)
        if (kc0 + u * KS < chunks) wq[u][p] = ld_stream16(wt[p] + (long)(kc0 + u * KS) * 512);
#pragma unroll
    for (int u = 0; u < U; u++) {
      const int kc = kc0 + u * KS;
      if (kc >= chunks) break;
      const int c0 = kc * 16 * KT;
      // scales and zero points of the chunk's group(s): k-tiles 0-1 and 2-3 (the same group
      // unless groups are 32 wide; 8-bit chunks are one group)
      float s[P][2][2];
      unsigned zlo[P][2], zhi[P][2];
#pragma unroll
      for (int h = 0; h < (CODE == MQC_I4 ? 2 : 1); h++) {
        const long grp = (c0 + 32 * h) >> groupShift;
#pragma unroll
        for (int p = 0; p < P; p++) {
          if (h == 1 && !g32) {
            s[p][1][0] = s[p][0][0]; s[p][1][1] = s[p][0][1];
            zlo[p][1] = zlo[p][0]; zhi[p][1] = zhi[p][0];
            continue;
          }
          s[p][h][0] = st[p][row * groupsPerRow + grp];
          s[p][h][1] = st[p][row8 * groupsPerRow + grp];
          if (CODE != MQC_I4) continue;
          unsigned za = zt[p] ? zt[p][row * groupsPerRow + grp] : 8u;
          unsigned zb = zt[p] ? zt[p][row8 * groupsPerRow + grp] : 8u;
          zlo[p][h] = (0x6400u + za) * 0x10001u;
          zhi[p][h] = (0xD400u + 16u * zb) * 0x10001u;
        }
      }
      float4 xv[NB][KT];
#pragma unroll
      for (int nb = 0; nb < NB; nb++)
#pragma unroll
        for (int j = 0; j < KT; j++) xv[nb][j] = __ldg((const float4*)(xr[nb] + c0 + 16 * j));
      if (NORM) {
#pragma unroll
        for (int j = 0; j < KT; j++) {
          float4 gv = __ldg((const float4*)(gr + c0 + 16 * j));
#pragma unroll
          for (int nb = 0; nb < NB; nb++) {
            float4 v = xv[nb][j];
            ss[nb] += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
            v.x *= gv.x; v.y *= gv.y; v.z *= gv.z; v.w *= gv.w;
            xv[nb][j] = v;
          }
        }
      }
#pragma unroll
      for (int j = 0; j < KT; j++) {
        unsigned b0[NB], b1[NB];
#pragma unroll
        for (int nb = 0; nb < NB; nb++) {
          b0[nb] = hasX[nb] ? mq_pack(xv[nb][j].x, xv[nb][j].y) : 0u;
          b1[nb] = hasX[nb] ? mq_pack(xv[nb][j].z, xv[nb][j].w) : 0u;
        }
#pragma unroll
        for (int p = 0; p < P; p++) {
          unsigned a[4];
          if (CODE == MQC_I4) {
            unsigned word = j == 0 ? wq[u][p].x : j == 1 ? wq[u][p].y : j == 2 ? wq[u][p].z : wq[u][p].w;
            mq_dequant(word, zlo[p][j >> 1], zhi[p][j >> 1], a);
          } else {
            mq8_dequant<CODE>(j == 0 ? wq[u][p].x : wq[u][p].z, j == 0 ? wq[u][p].y : wq[u][p].w, a);
          }
#pragma unroll
          for (int nb = 0; nb < NB; nb++) mq_mma(part[p][j & 1][nb], a, b0[nb], b1[nb]);
          if (j == KT - 1 || (CODE == MQC_I4 && g32 && j == 1)) {
            const int h = CODE == MQC_I4 ? j >> 1 : 0;
#pragma unroll
            for (int nb = 0; nb < NB; nb++)
#pragma unroll
              for (int i = 0; i < 4; i++) {
                acc[p][nb][i] += s[p][h][i >> 1] * (part[p][0][nb][i] + part[p][1][nb][i]);
                part[p][0][nb][i] = part[p][1][nb][i] = 0.f;
              }
          }
        }
      }
    }
  }
  // the warps' sums (and the activation rows' sums of squares), in a fixed order
#pragma unroll
  for (int p = 0; p < P; p++)
#pragma unroll
    for (int nb = 0; nb < NB; nb++)
#pragma unroll
      for (int i = 0; i < 4; i++) red[warp][p][nb][i][lane] = acc[p][nb][i];
  if (NORM) {
#pragma unroll
    for (int nb = 0; nb < NB; nb++) {
      float q = hasX[nb] ? ss[nb] : 0.f;
      q += __shfl_xor_sync(0xffffffffu, q, 1);
      q += __shfl_xor_sync(0xffffffffu, q, 2);
      if (t == 0) ssRed[warp][8 * nb + g] = q;
    }
  }
  __syncthreads();
  if (warp != 0) return;
#pragma unroll
  for (int nb = 0; nb < NB; nb++) {
  float tot[P][4];
#pragma unroll
  for (int p = 0; p < P; p++)
#pragma unroll
    for (int i = 0; i < 4; i++) {
      float v = 0.f;
      for (int k = 0; k < KS; k++) v += red[k][p][nb][i][lane];
      tot[p][i] = v;
    }
#pragma unroll
  for (int e = 0; e < 2; e++) {
    const int r = 8 * nb + 2 * t + e;  // the activation row of accumulators e and 2 + e
    if (r >= n) continue;
    float inv = 1.f;
    if (NORM) {
      float q = 0.f;
      for (int k = 0; k < KS; k++) q += ssRed[k][r];
      inv = (float)(1.0 / sqrt((double)(q / in + eps)));
    }
    mq_store_rows<SW, P>(y, out, b * 16 + g, r, tot, e, inv, accumulate);
  }
  }
}

// <codes>_<split>_<form>: form plain, norm, swiglu or swiglu_norm. grid: the row tiles of all matrices
// (ceil(out / 16) each; gate/up together with swiglu); block: 32 * KS.
#define MQ_KERNEL(NAME, CODE, KS, U, SW, NORM, NB)                                                  \
  extern "C" __global__ void __launch_bounds__(32 * KS) NAME(                                    \
      const unsigned char* w0, const float* s0, const unsigned char* z0, float* y0, int out0,    \
      const unsigned char* w1, const float* s1, const unsigned char* z1, float* y1, int out1,    \
      const unsigned char* w2, const float* s2, const unsigned char* z2, float* y2, int out2,    \
      int groupShift, int groupsPerRow, const float* x, int in, int n, int accumulate,           \
      const float* normW, float eps) {                                                           \
    mq_impl<CODE, KS, U, SW, NORM, NB>(w0, s0, z0, y0, out0, w1, s1, z1, y1, out1, w2, s2, z2, y2,  \
                                       out2,                                                     \
                              groupShift, groupsPerRow, x, in, n, accumulate, normW, eps);       \
  }
#define MQ_FORMS(SPLIT, CODE, KS, U, NB)                           \
  MQ_KERNEL(SPLIT##_plain, CODE, KS, U, false, false, NB)           \
  MQ_KERNEL(SPLIT##_norm, CODE, KS, U, false, true, NB)             \
  MQ_KERNEL(SPLIT##_swiglu, CODE, KS, U, true, false, NB)           \
  MQ_KERNEL(SPLIT##_swiglu_norm, CODE, KS, U, true, true, NB)
#define MQ_SPLITS(PREFIX, CODE)                                     \
  MQ_FORMS(PREFIX##_k8u4, CODE, 8, 4, 1)                            \
  MQ_FORMS(PREFIX##_k16u2, CODE, 16, 2, 1)                          \
  MQ_FORMS(PREFIX##_k16u4, CODE, 16, 4, 1)                          \
  MQ_FORMS(PREFIX##x2_k8u4, CODE, 8, 4, 2)                          \
  MQ_FORMS(PREFIX##x2_k16u2, CODE, 16, 2, 2)                        \
  MQ_FORMS(PREFIX##x2_k16u4, CODE, 16, 4, 2)                        \
  MQ_FORMS(PREFIX##x4_k8u4, CODE, 8, 4, 4)

// <codes>_*: 1-8 activation rows; <codes>x2_*: 9-16 (two mmas per fragment); <codes>x4_k8u4_*:
// 17-32 (four). mq4: INT4 / Q4_0,
// mq8i: INT8 / Q8_0, mq8e: FP8 E4M3.
MQ_SPLITS(mq4, MQC_I4)
MQ_SPLITS(mq8i, MQC_I8)
MQ_SPLITS(mq8e, MQC_E4M3)

// mqs: the tiled products of 1-8 activation rows with everything a chunk multiplies staged in
// shared memory, so that a warp's only long-latency loads are its weights, and those run D chunks
// ahead through cp.async without holding registers. ncu on mq (session 17) showed its 4-bit
// products latency-bound: each chunk waited on its own activation and scale loads from L2 and few
// warps were left to hide it (93 registers for gate/up). Here a block, before it waits for the
// previous kernel, issues its first D - 1 weight chunks per lane into a private ring (lane l only
// ever reads the 16 bytes it copied itself, so cp.async.wait_group suffices, no barrier) and copies
// its tile's scales (and 4-bit zero points, pre-biased as mq_dequant wants them) into a table;
// after the wait it converts the n activation rows (times the norm weights with NORM) to F16 once
// into shared memory, and each chunk then reads them with 8-byte shared loads. Lanes of rows past
// n read a zeroed area instead. The products, scales and sums are mq's: the same F16 rounding of
// the activations, the same mma order and per-group F32 scaling; only the order in which NORM's
// sum of squares is added differs. Dynamic shared memory, bytes (the Java side sizes it and falls
// back to mq where it exceeds the device's limit): ring D * P * KS * 512, table P * groupsPerRow *
// 8 * 16, activations n * in * 2 + 128 zeroed, NORM's per-warp sums KS * 8 * 4.
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(
                   (unsigned)__cvta_generic_to_shared(smem)),
               "l"(gmem)
               : "memory");
}

// Pulls the line of p toward L2 (a hint: nothing waits on it).
__device__ __forceinline__ void prefetch_l2(const void* p) {
  asm volatile("prefetch.global.L2 [%0];" ::"l"(p));
}

// cp_async16 of the first `bytes` (0 or 16) of src, the rest of the 16 zeroed.
__device__ __forceinline__ void cp_async16_zfill(void* smem, const void* gmem, int bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(
                   (unsigned)__cvta_generic_to_shared(smem)),
               "l"(gmem), "r"(bytes)
               : "memory");
}

__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;" ::: "memory");
}

template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}

template <int CODE, int KS, int D, bool SW, bool NORM>
__device__ __forceinline__ void mqs_impl(
    const unsigned char* w0, const float* s0, const unsigned char* z0, float* y0, int out0,
    const unsigned char* w1, const float* s1, const unsigned char* z1, float* y1, int out1,
    const unsigned char* w2, const float* s2, const unsigned char* z2, float* y2, int out2,
    int groupShift, int groupsPerRow, const float* x, int in, int n, int accumulate,
    const float* normW, float eps) {
  static_assert((D & (D - 1)) == 0 && D >= 2, "ring depth: a power of two");
  constexpr int P = SW ? 2 : 1;
  constexpr int KT = CODE == MQC_I4 ? 4 : 2;
  extern __shared__ __align__(16) unsigned char mqs_smem[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  int b, out;
  float* y;
  const int chunks = in / (16 * KT);
  const unsigned char* wt[P];
  const float* st[P];
  const unsigned char* zt[P];
  mq_block_tile<SW, P>(w0, s0, z0, y0, out0, w1, s1, z1, y1, out1, w2, s2, z2, y2, out2,
                       (long)chunks * 512, lane, b, y, out, wt, st, zt);
  // shared memory: ring [D][P][KS][32] uint4, table [P][groups][8] uint4, activations, zeros, sums
  uint4* ring = (uint4*)mqs_smem;
  uint4* table = ring + D * P * KS * 32;
  unsigned char* xs = (unsigned char*)(table + P * groupsPerRow * 8);
  unsigned char* zeroArea = xs + (long)n * in * 2;
  float* ssw = (float*)(zeroArea + 128);
  const int cnt = warp < chunks ? (chunks - 1 - warp) / KS + 1 : 0;
  pdl_launch_next();
  // the weights and scales are immutable: start the ring and fill the table before waiting
#pragma unroll
  for (int s = 0; s < D - 1; s++) {
    if (s < cnt)
#pragma unroll
      for (int p = 0; p < P; p++)
        cp_async16(ring + ((s * P + p) * KS + warp) * 32 + lane, wt[p] + (long)(warp + s * KS) * 512);
    cp_async_commit();
  }
  for (int i = threadIdx.x; i < P * 16 * groupsPerRow; i += 32 * KS) {
    const int p = SW ? i / (16 * groupsPerRow) : 0;
    const int rest = i - p * 16 * groupsPerRow;
    const int r16 = rest / groupsPerRow, grp = rest - r16 * groupsPerRow;
    const long row = min(b * 16 + r16, out - 1);
    // p is not a constant here: select, so that the pointer arrays stay in registers
    const float* sp = p == 0 ? st[0] : st[P - 1];
    const unsigned char* zpp = p == 0 ? zt[0] : zt[P - 1];
    const float s = sp[row * groupsPerRow + grp];
    unsigned z = 0;
    if (CODE == MQC_I4) {
      const unsigned zv = zpp ? zpp[row * groupsPerRow + grp] : 8u;
      z = r16 < 8 ? (0x6400u + zv) * 0x10001u : (0xD400u + 16u * zv) * 0x10001u;
    }
    unsigned* e = (unsigned*)(table + (p * groupsPerRow + grp) * 8 + (r16 & 7));
    e[r16 >> 3] = __float_as_uint(s);  // .x the scale of row g, .y of row g + 8
    e[2 + (r16 >> 3)] = z;             // .z zlo (row g), .w zhi (row g + 8)
  }
  if (threadIdx.x < 8) ((uint4*)zeroArea)[threadIdx.x] = make_uint4(0u, 0u, 0u, 0u);
  pdl_wait_previous();
  // the activation rows, once, in F16 (times the norm weights; each row's sum of squares per warp)
  const int quads = in >> 2;
  for (int r = 0; r < n; r++) {
    float q = 0.f;
    for (int c4 = threadIdx.x; c4 < quads; c4 += 32 * KS) {
      float4 v = __ldg((const float4*)(x + (long)r * in) + c4);
      if (NORM) {
        const float4 gv = __ldg((const float4*)normW + c4);
        q += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
        v.x *= gv.x; v.y *= gv.y; v.z *= gv.z; v.w *= gv.w;
      }
      ((uint2*)(xs + (long)r * in * 2))[c4] = make_uint2(mq_pack(v.x, v.y), mq_pack(v.z, v.w));
    }
    if (NORM) {
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) q += __shfl_xor_sync(0xffffffffu, q, o);
      if (lane == 0) ssw[warp * 8 + r] = q;
    }
  }
  __syncthreads();
  // this lane's activations: row g's columns c0 + 16 j + 4 t .. + 3, or zeros past row n
  const bool hasX = g < n;
  const unsigned char* xb = hasX ? xs + ((long)g * in + 4 * t) * 2 : zeroArea;
  const int xmask = hasX ? -1 : 0;
  const bool g32 = groupShift == 5;
  float acc[P][4], part[P][2][4];
#pragma unroll
  for (int p = 0; p < P; p++)
#pragma unroll
    for (int i = 0; i < 4; i++) acc[p][i] = part[p][0][i] = part[p][1][i] = 0.f;
  for (int i = 0; i < cnt; i++) {
    const int s = i + D - 1;
    if (s < cnt)
#pragma unroll
      for (int p = 0; p < P; p++)
        cp_async16(ring + (((s & (D - 1)) * P + p) * KS + warp) * 32 + lane,
                   wt[p] + (long)(warp + s * KS) * 512);
    cp_async_commit();
    cp_async_wait<D - 1>();
    const int kc = warp + i * KS;
    const int c0 = kc * 16 * KT;
    uint4 wq[P];
#pragma unroll
    for (int p = 0; p < P; p++) wq[p] = ring[(((i & (D - 1)) * P + p) * KS + warp) * 32 + lane];
    uint2 xv[KT];
    const unsigned char* xc = xb + ((c0 * 2) & xmask);
#pragma unroll
    for (int j = 0; j < KT; j++) xv[j] = *(const uint2*)(xc + 32 * j);
    // the group(s) of the chunk: k-tiles 0-1 and 2-3 (the same unless groups are 32 wide)
    uint4 e[P][2];
#pragma unroll
    for (int p = 0; p < P; p++) {
      e[p][0] = table[(p * groupsPerRow + (c0 >> groupShift)) * 8 + g];
      e[p][1] = CODE == MQC_I4 && g32 ? table[(p * groupsPerRow + ((c0 + 32) >> groupShift)) * 8 + g]
                                      : e[p][0];
    }
#pragma unroll
    for (int j = 0; j < KT; j++) {
#pragma unroll
      for (int p = 0; p < P; p++) {
        unsigned a[4];
        if (CODE == MQC_I4) {
          const unsigned word = j == 0 ? wq[p].x : j == 1 ? wq[p].y : j == 2 ? wq[p].z : wq[p].w;
          mq_dequant(word, e[p][j >> 1].z, e[p][j >> 1].w, a);
        } else {
          mq8_dequant<CODE>(j == 0 ? wq[p].x : wq[p].z, j == 0 ? wq[p].y : wq[p].w, a);
        }
        mq_mma(part[p][j & 1], a, xv[j].x, xv[j].y);
        if (j == KT - 1 || (CODE == MQC_I4 && g32 && j == 1)) {
          const int h = CODE == MQC_I4 ? j >> 1 : 0;
          const float sg = __uint_as_float(e[p][h].x), sg8 = __uint_as_float(e[p][h].y);
#pragma unroll
          for (int q = 0; q < 4; q++) {
            acc[p][q] += (q < 2 ? sg : sg8) * (part[p][0][q] + part[p][1][q]);
            part[p][0][q] = part[p][1][q] = 0.f;
          }
        }
      }
    }
  }
  // every read of the ring is done before it holds the warps' sums, in a fixed order
  cp_async_wait<0>();
  __syncthreads();
  float* red = (float*)mqs_smem;  // [KS][P][4][32]
#pragma unroll
  for (int p = 0; p < P; p++)
#pragma unroll
    for (int q = 0; q < 4; q++) red[((warp * P + p) * 4 + q) * 32 + lane] = acc[p][q];
  __syncthreads();
  if (warp != 0) return;
  float tot[P][4];
#pragma unroll
  for (int p = 0; p < P; p++)
#pragma unroll
    for (int q = 0; q < 4; q++) {
      float v = 0.f;
      for (int k = 0; k < KS; k++) v += red[((k * P + p) * 4 + q) * 32 + lane];
      tot[p][q] = v;
    }
#pragma unroll
  for (int e2 = 0; e2 < 2; e2++) {
    const int r = 2 * t + e2;  // the activation row of accumulators e2 and 2 + e2
    if (r >= n) continue;
    float inv = 1.f;
    if (NORM) {
      float q = 0.f;
      for (int k = 0; k < KS; k++) q += ssw[k * 8 + r];
      inv = (float)(1.0 / sqrt((double)(q / in + eps)));
    }
    mq_store_rows<SW, P>(y, out, b * 16 + g, r, tot, e2, inv, accumulate);
  }
}

// <codes>_<split>_<form> as mq's, for the staged splits (1-8 activation rows only).
#define MQS_KERNEL(NAME, CODE, KS, D, SW, NORM)                                                     \
  extern "C" __global__ void __launch_bounds__(32 * KS) NAME(                                    \
      const unsigned char* w0, const float* s0, const unsigned char* z0, float* y0, int out0,    \
      const unsigned char* w1, const float* s1, const unsigned char* z1, float* y1, int out1,    \
      const unsigned char* w2, const float* s2, const unsigned char* z2, float* y2, int out2,    \
      int groupShift, int groupsPerRow, const float* x, int in, int n, int accumulate,           \
      const float* normW, float eps) {                                                           \
    mqs_impl<CODE, KS, D, SW, NORM>(w0, s0, z0, y0, out0, w1, s1, z1, y1, out1, w2, s2, z2, y2,  \
                                    out2, groupShift, groupsPerRow, x, in, n, accumulate, normW, \
                                    eps);                                                        \
  }
#define MQS_FORMS(SPLIT, CODE, KS, D)                        \
  MQS_KERNEL(SPLIT##_plain, CODE, KS, D, false, false)       \
  MQS_KERNEL(SPLIT##_norm, CODE, KS, D, false, true)         \
  MQS_KERNEL(SPLIT##_swiglu, CODE, KS, D, true, false)       \
  MQS_KERNEL(SPLIT##_swiglu_norm, CODE, KS, D, true, true)
#define MQS_SPLITS(PREFIX, CODE)          \
  MQS_FORMS(PREFIX##_k8s4, CODE, 8, 4)    \
  MQS_FORMS(PREFIX##_k8s8, CODE, 8, 8)    \
  MQS_FORMS(PREFIX##_k16s4, CODE, 16, 4)

MQS_SPLITS(mq4, MQC_I4)
MQS_SPLITS(mq8i, MQC_I8)
MQS_SPLITS(mq8e, MQC_E4M3)

// ---------------------------------------------------------------------------------------------
// mqp4: one-row INT4 products on row pairs (tools/gpu/chain_bench.cu's body 2, perf/RESULTS.md
// session 35: a chain of the 8B shape's one-row products ran 1.42x faster with it than with a
// warp per row and lane-strided chunks). A second copy of a matrix in its own layout (MQP units,
// repacked on the device from the tiled layout by mqp4_repack), for the one-row decode products
// of symmetric INT4 weights in groups of 128 (MgemvSplits.MQ_WIDE_UNITS):
// - A unit is 1,024 columns of one row: 512 bytes of codes, then its 8 F32 scales (544 bytes).
//   Lane l's 16 bytes hold, in word q (0-3), the columns 256q + 8l .. 256q + 8l + 7 of the unit,
//   column 8l' + 2j at bits 4j and 8l' + 2j + 1 at bits 16 + 4j (j = 0..3), so that one shift and
//   mask give the F16 pair of two adjacent columns, and for each q the warp reads 512 contiguous
//   bytes of the staged input (four wavefronts, no bank conflict).
// - Lane l's word q is in the unit's group 2q + l / 16; the scales are stored [l / 16][q].
// - Rows go in pairs, their units interleaved (a0 b0 a1 b1 ...): rows (2i, 2i + 1) of a matrix,
//   or (gate i, up i) for SwiGLU, so one read of the staged input serves both rows.
// A warp multiplies one pair over the whole width, four unit pairs of loads in flight per lane;
// eight warps a block share the input, staged once per block in F16 (times the norm weights with
// NORM, and the row's sum of squares). With rounds > 1 each warp takes that many pairs in turn
// (8 x rounds a block), so the staging (with the norm folded in at 4,096 columns, as many bytes
// as the block's codes) is paid once for them all. Numerics: the activations rounded to F16 as
// mq's; within a word (8 columns) the products are summed in F16 (fma.rn.f16x2, four per half:
// codes - 8 are at most 8 in magnitude, so an activation below 2,047 cannot overflow them), each
// word's sum then scaled by its group's F32 scale and added in F32; the butterfly adds the lanes.
// Summed in another order than mq, and with F16 partial sums: the results agree with mq's to F16
// rounding, not to the bit.
#define MQP_WARPS 8
#define MQP_UNIT_COLS 1024
#define MQP_UNIT_BYTES 544

// One side of the unit layout from the tiled layout: for pair p < pairs, the row p * rowMul +
// rowAdd of the tiled matrix (w, scales: totalRows x in, groups of 128) becomes side `side` (0 or
// 1) of pair p in units. One thread per 32-bit word of the destination (128 code words and 8
// scales a unit).
extern "C" __global__ void mqp4_repack(const unsigned char* w, const float* scales, int in,
                                       int groupsPerRow, unsigned char* units, int pairs,
                                       int rowMul, int rowAdd, int side) {
  pdl_enter();
  const int upr = in / MQP_UNIT_COLS, chunks = in >> 6;
  const long total = (long)pairs * upr * 136;
  for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < total;
       i += (long)gridDim.x * blockDim.x) {
    const long pu = i / 136;
    const int sub = (int)(i - pu * 136);
    const long p = pu / upr;
    const int u = (int)(pu - p * upr);
    const long r = p * rowMul + rowAdd;
    unsigned* dst = (unsigned*)(units + (pu * 2 + side) * MQP_UNIT_BYTES) + sub;
    if (sub >= 128) {
      const int h = (sub - 128) >> 2, q = (sub - 128) & 3;
      *dst = __float_as_uint(scales[r * groupsPerRow + u * 8 + 2 * q + h]);
      continue;
    }
    const int l = sub >> 2, q = sub & 3;
    const long rt = r >> 4;
    const int g = (int)(r & 7), hi = (int)((r >> 3) & 1);
    unsigned word = 0;
#pragma unroll
    for (int e = 0; e < 8; e++) {
      const int c = u * MQP_UNIT_COLS + 256 * q + 8 * l + e;
      const int kc = c >> 6, cc = c & 63;
      const int j = cc >> 4, t = (cc >> 2) & 3, m = cc & 3;
      const int k = hi + 2 * (m >> 1) + 4 * (m & 1);  // the nibble of (row, col) in its word
      const unsigned src = *(const unsigned*)(w + 4 * ((((rt * chunks + kc) * 32) + g * 4 + t) * 4 + j));
      word |= ((src >> (4 * k)) & 15u) << (4 * (e >> 1) + 16 * (e & 1));
    }
    *dst = word;
  }
}

// The F32 sum of an F16 pair's halves.
__device__ __forceinline__ float mqp_h2sum(unsigned h2) {
  return f16_to_f32((u16)(h2 & 0xffffu)) + f16_to_f32((u16)(h2 >> 16));
}

// Lane l's part of two rows' dot products over one unit pair: codes ca / cb, and sa / sb the
// unit's scale l % 8 (each lane loads one, and takes the four it needs from the others by
// shuffles: with four F32 scales each in registers the kernels took 92 registers, two blocks an
// SM; 80 this way, three); the unit's staged input at xs. Every lane of the warp calls it.
__device__ __forceinline__ void mqp_unit_pair(uint4 ca, float sa, uint4 cb, float sb,
                                              const unsigned short* xs, int lane, float& suma,
                                              float& sumb) {
  const unsigned wa[4] = {ca.x, ca.y, ca.z, ca.w}, wb[4] = {cb.x, cb.y, cb.z, cb.w};
  const unsigned bias = 0x64086408u;  // F16 1032 in both halves: 1024 + code - 1032 = code - 8
#pragma unroll
  for (int q = 0; q < 4; q++) {
    const uint4 xv = *(const uint4*)(xs + 256 * q + 8 * lane);
    const unsigned xw[4] = {xv.x, xv.y, xv.z, xv.w};
    unsigned aa = 0u, ab = 0u;
#pragma unroll
    for (int j = 0; j < 4; j++) {
      aa = mq_hfma2(mq_hsub2(mq_nib(wa[q] >> (4 * j), 0x000F000Fu), bias), xw[j], aa);
      ab = mq_hfma2(mq_hsub2(mq_nib(wb[q] >> (4 * j), 0x000F000Fu), bias), xw[j], ab);
    }
    // lane 4 (l / 16) + q loaded the scale of word q's group (stored [l / 16][q])
    suma += mqp_h2sum(aa) * __shfl_sync(0xffffffffu, sa, 4 * (lane >> 4) + q);
    sumb += mqp_h2sum(ab) * __shfl_sync(0xffffffffu, sb, 4 * (lane >> 4) + q);
  }
}

// Lane l's loads of unit pair v of the pair whose units start at base: codes ca / cb (16 bytes
// each, streamed past L1) and the scales sa / sb (scale l % 8 of each unit; see mqp_unit_pair).
__device__ __forceinline__ void mqp_load_pair(const unsigned char* base, int v, int lane,
                                              uint4& ca, float& sa, uint4& cb, float& sb) {
  const unsigned char* a = base + (long)(2 * v) * MQP_UNIT_BYTES;
  ca = ld_stream16(a + 16 * lane);
  sa = *(const float*)(a + 512 + 4 * (lane & 7));
  cb = ld_stream16(a + MQP_UNIT_BYTES + 16 * lane);
  sb = *(const float*)(a + MQP_UNIT_BYTES + 512 + 4 * (lane & 7));
}

// grid: the blocks of every matrix in turn (ceil(pairs / (MQP_WARPS * rounds)) each: out / 2
// pairs, or out for SwiGLU, whose one unit buffer u0 holds gate/up pairs and whose output goes to
// y0); block: 32 * MQP_WARPS; dynamic shared memory in * 2 + MQP_WARPS * 4 bytes. Preconditions
// (Java side): in a multiple of 1,024; out even unless SwiGLU; units repacked by mqp4_repack.
template <bool SW, bool NORM>
__device__ __forceinline__ void mqp_impl(const unsigned char* u0, float* y0, int out0,
                                         const unsigned char* u1, float* y1, int out1,
                                         const unsigned char* u2, float* y2, int out2,
                                         const float* x, int in, int accumulate,
                                         const float* normW, float eps, int rounds) {
  extern __shared__ __align__(16) unsigned short mqp_xs[];
  // the warps' sums of squares after the row, in the dynamic area: a static array beside it would
  // leave the opt-in limit unreachable for the dynamic size the Java side sets
  float* mqpSs = (float*)(mqp_xs + in);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int pairs0 = SW ? out0 : out0 >> 1, pairs1 = out1 >> 1, pairs2 = out2 >> 1;
  const int per = MQP_WARPS * rounds;  // row pairs a block takes
  const int bl0 = (pairs0 + per - 1) / per, bl1 = (pairs1 + per - 1) / per;
  int b = blockIdx.x, pairs = pairs0;
  const unsigned char* units = u0;
  float* y = y0;
  if (b >= bl0 + bl1) {
    b -= bl0 + bl1;
    pairs = pairs2;
    units = u2;
    y = y2;
  } else if (b >= bl0) {
    b -= bl0;
    pairs = pairs1;
    units = u1;
    y = y1;
  }
  pdl_launch_next();
  pdl_wait_previous();
  float ss = 0.f;
  // unrolled so that a thread's loads of the row are in flight together, not one L2 trip each
#pragma unroll 4
  for (int c4 = threadIdx.x; c4 < (in >> 2); c4 += 32 * MQP_WARPS) {
    float4 v = __ldg((const float4*)x + c4);
    if (NORM) {
      const float4 gv = __ldg((const float4*)normW + c4);
      ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
      v.x *= gv.x; v.y *= gv.y; v.z *= gv.z; v.w *= gv.w;
    }
    ((uint2*)mqp_xs)[c4] = make_uint2(mq_pack(v.x, v.y), mq_pack(v.z, v.w));
  }
  if (NORM) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    if (lane == 0) mqpSs[warp] = ss;
  }
  __syncthreads();
  const int upr = in / MQP_UNIT_COLS;
  float inv = 1.f;
  if (NORM) {
    float q = 0.f;
    for (int k = 0; k < MQP_WARPS; k++) q += mqpSs[k];
    inv = (float)(1.0 / sqrt((double)(q / in + eps)));
  }
  // round r: the warp's pair is b * per + r * MQP_WARPS + warp, the staged row serving them all
  for (int r = 0; r < rounds; r++) {
    const int item = b * per + r * MQP_WARPS + warp;
    if (item >= pairs) return;
    const unsigned char* base = units + (long)item * upr * 2 * MQP_UNIT_BYTES;
    float suma = 0.f, sumb = 0.f;
    // four slots of unit pairs; slot i is refilled with unit v + 4 as soon as unit v (v % 4 == i)
    // is multiplied, so three slots' loads stay in flight while a warp computes, at no extra
    // registers (with them the step ran 1.034x mq-wide's, session 37); ncu still finds down's
    // warps waiting on these loads half their time at 15 warps an SM (perf/RESULTS.md)
    uint4 ca[4], cb[4];
    float sa[4], sb[4];
#pragma unroll
    for (int i = 0; i < 4; i++) {
      if (i < upr) mqp_load_pair(base, i, lane, ca[i], sa[i], cb[i], sb[i]);
    }
    for (int v0 = 0; v0 < upr; v0 += 4) {
#pragma unroll
      for (int i = 0; i < 4; i++) {
        if (v0 + i < upr) {
          mqp_unit_pair(ca[i], sa[i], cb[i], sb[i], mqp_xs + (v0 + i) * MQP_UNIT_COLS, lane,
                        suma, sumb);
          if (v0 + 4 + i < upr) mqp_load_pair(base, v0 + 4 + i, lane, ca[i], sa[i], cb[i], sb[i]);
        }
      }
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      suma += __shfl_xor_sync(0xffffffffu, suma, o);
      sumb += __shfl_xor_sync(0xffffffffu, sumb, o);
    }
    if (lane == 0) {
      const float va = suma * inv, vb = sumb * inv;
      if (SW) {
        y[item] = va / (1.f + expf(-va)) * vb;
      } else {
        store_out(y, 2L * item, va, accumulate);
        store_out(y, 2L * item + 1, vb, accumulate);
      }
    }
  }
}

#define MQP_KERNEL(NAME, SW, NORM)                                                                \
  extern "C" __global__ void __launch_bounds__(32 * MQP_WARPS) NAME(                             \
      const unsigned char* u0, float* y0, int out0, const unsigned char* u1, float* y1,          \
      int out1, const unsigned char* u2, float* y2, int out2, const float* x, int in,            \
      int accumulate, const float* normW, float eps, int rounds) {                               \
    mqp_impl<SW, NORM>(u0, y0, out0, u1, y1, out1, u2, y2, out2, x, in, accumulate, normW, eps,  \
                       rounds);                                                                  \
  }
MQP_KERNEL(mqp4_plain, false, false)
MQP_KERNEL(mqp4_norm, false, true)
MQP_KERNEL(mqp4_swiglu, true, false)
MQP_KERNEL(mqp4_swiglu_norm, true, true)

// ---------------------------------------------------------------------------------------------
// mqw: the tiled products for many activation rows (large decode batches, from 33 rows), where
// mq's activation loads grow with the rows: each of its warps reads every row's F32 activations
// of its chunks from L2, at 32 rows sixteen times the weight bytes it decodes, and the tile path
// above 32 rows (decode to F16, then cuBLASLt) writes and reads the whole matrix in F16 each step.
// Here the activations come as F16 rows xh[n][in] (cast_f32 once per product) and a block stages
// a window of them, MQW_NT rows x MQW_WIN columns, in shared memory through cp.async, double
// buffered. Each of the block's MQW_WARPS warps owns one 16-row weight tile, streams that tile's
// chunks of the window (16 bytes per lane, the layout mq reads) and multiplies each A fragment
// by the MQW_NT / 8 B fragments of the staged rows (one 8-byte shared load each), so a weight byte
// is read from memory once per MQW_NT rows and an activation element from L2 once per MQW_WARPS
// tiles. grid: (ceil(tiles / MQW_WARPS), ceil(n / MQW_NT), splits); split z takes the windows
// [z * W / splits, (z + 1) * W / splits) of the W = ceil(in / MQW_WIN). Numerics are mq's: F16
// activations (the cast rounds to nearest even as mq_pack does), F32 mma sums, the group's F32
// scale on each group's sum; sums run in column order within a split. With splits > 1 each block
// writes its split's sums to partial[z][n][out]; the last of a tile's splits to arrive (counted in
// counters[blockIdx.y * gridDim.x + blockIdx.x], which it sets back to 0 for the next launch)
// adds the splits in order and stores, so the result does not depend on which finishes first.
// Preconditions (Java side): in a multiple of the codes' chunk; groups as mq's, at most MQW_WIN
// columns unless one per row; xh 16-byte aligned rows (in a multiple of 8).
#define MQW_WARPS 8
#define MQW_NT 64
#define MQW_WIN 256
#define MQW_STRIDE (MQW_WIN + 16)  // F16 elements per staged row: 32 bytes past a multiple of 128,
                                   // so the 8-byte loads of rows g = 0..3 hit distinct banks

// Stages rows [r0, r0 + MQW_NT) x columns [c0, c0 + cols) of xh into xs (rows past n zeroed).
__device__ __forceinline__ void mqw_stage(unsigned short* xs, const unsigned short* xh, int n,
                                          int in, int r0, int c0, int cols) {
  const int per = cols / 8;  // 16-byte pieces per row
  for (int i = threadIdx.x; i < MQW_NT * per; i += blockDim.x) {
    const int r = i / per, p = i - r * per;
    unsigned short* dst = xs + r * MQW_STRIDE + p * 8;
    const int row = r0 + r;
    const unsigned short* src = xh + (long)min(row, n - 1) * in + c0 + p * 8;
    cp_async16_zfill(dst, src, row < n ? 16 : 0);
  }
}

// The element r * out + o of y (and of a split's partial sums) that accumulator i of the mma
// nb holds in lane (g, t) of the warp whose tile starts at output o0 - g, block rows from r0; -1
// past n or out.
__device__ __forceinline__ long mqw_elem(int r0, int o0, int nb, int i, int t, int n, int out) {
  const int r = r0 + 8 * nb + 2 * t + (i & 1), o = o0 + 8 * (i >> 1);
  return r < n && o < out ? (long)r * out + o : -1;
}

template <int CODE>
__device__ __forceinline__ void mqw_impl(const unsigned char* w, const float* sc,
                                         const unsigned char* zp, float* y, int out,
                                         int groupShift, int groupsPerRow,
                                         const unsigned short* xh, int in, int n, int accumulate,
                                         float* partial, int* counters) {
  constexpr int KT = CODE == MQC_I4 ? 4 : 2;  // k-tiles of 16 columns per 512-byte chunk
  constexpr int CC = 16 * KT;                 // columns per chunk
  constexpr int NB = MQW_NT / 8;              // mmas per A fragment
  extern __shared__ __align__(16) unsigned short mqw_smem[];  // [2][MQW_NT][MQW_STRIDE]
  __shared__ int mqwLast;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int tiles = (out + 15) >> 4;
  const int tile = blockIdx.x * MQW_WARPS + warp;
  const bool live = tile < tiles;
  const int chunks = in / CC;
  const unsigned char* wt = w + (long)min(tile, tiles - 1) * chunks * 512 + lane * 16;
  const long row = min(tile * 16 + g, out - 1), row8 = min(tile * 16 + g + 8, out - 1);
  const int r0 = blockIdx.y * MQW_NT;
  const int windows = (in + MQW_WIN - 1) / MQW_WIN;
  const int w0 = (int)((long)blockIdx.z * windows / gridDim.z);
  const int w1 = (int)((long)(blockIdx.z + 1) * windows / gridDim.z);
  const bool rowGroup = groupShift >= MQ_ROW_GROUP;
  pdl_launch_next();
  pdl_wait_previous();
  float acc[NB][4], part[NB][4];
#pragma unroll
  for (int nb = 0; nb < NB; nb++)
#pragma unroll
    for (int i = 0; i < 4; i++) acc[nb][i] = part[nb][i] = 0.f;
  if (w0 < w1) {
    mqw_stage(mqw_smem, xh, n, in, r0, w0 * MQW_WIN, min(MQW_WIN, in - w0 * MQW_WIN));
  }
  cp_async_commit();
  for (int win = w0; win < w1; win++) {
    const int c0 = win * MQW_WIN;
    const int cols = min(MQW_WIN, in - c0);
    unsigned short* xs = mqw_smem + ((win - w0) & 1) * MQW_NT * MQW_STRIDE;
    // the next window into the other buffer (whose last reader passed the barrier at the end of
    // the previous iteration), while this one is used
    if (win + 1 < w1) {
      mqw_stage(mqw_smem + ((win + 1 - w0) & 1) * MQW_NT * MQW_STRIDE, xh, n, in, r0,
                c0 + MQW_WIN, min(MQW_WIN, in - c0 - MQW_WIN));
    }
    cp_async_commit();
    // this warp's weight chunks of the window, all in flight before the wait; the next window's
    // pulled toward L2 meanwhile (no registers held), so its loads wait on L2, not on DRAM
    const int kc0 = c0 / CC, nk = cols / CC;
    uint4 wq[MQW_WIN / CC];
#pragma unroll
    for (int u = 0; u < MQW_WIN / CC; u++)
      if (live && u < nk) wq[u] = ld_stream16(wt + (long)(kc0 + u) * 512);
    if (live && win + 1 < w1) {
      const int nk2 = min(MQW_WIN, in - c0 - MQW_WIN) / CC;
#pragma unroll
      for (int u = 0; u < MQW_WIN / CC; u++)
        if (u < nk2) prefetch_l2(wt + (long)(kc0 + nk + u) * 512);
    }
    cp_async_wait<1>();
    __syncthreads();
    if (live) {
#pragma unroll
      for (int u = 0; u < MQW_WIN / CC; u++) {
        if (u >= nk) break;
        const int cc = c0 + u * CC;  // the chunk's first column
#pragma unroll
        for (int j = 0; j < KT; j++) {
          const int col = cc + 16 * j;
          unsigned a[4];
          if (CODE == MQC_I4) {
            const long grp = col >> groupShift;
            const unsigned za = zp ? zp[row * groupsPerRow + grp] : 8u;
            const unsigned zb = zp ? zp[row8 * groupsPerRow + grp] : 8u;
            const unsigned word = j == 0 ? wq[u].x : j == 1 ? wq[u].y : j == 2 ? wq[u].z : wq[u].w;
            mq_dequant(word, (0x6400u + za) * 0x10001u, (0xD400u + 16u * zb) * 0x10001u, a);
          } else {
            mq8_dequant<CODE>(j == 0 ? wq[u].x : wq[u].z, j == 0 ? wq[u].y : wq[u].w, a);
          }
          const unsigned short* xr = xs + g * MQW_STRIDE + (col - c0) + 4 * t;
#pragma unroll
          for (int nb = 0; nb < NB; nb++) {
            const uint2 b = *(const uint2*)(xr + nb * 8 * MQW_STRIDE);
            mq_mma(part[nb], a, b.x, b.y);
          }
          // the group's sum, scaled, into acc at the group's last k-tile
          if (!rowGroup && ((col + 16) & ((1 << groupShift) - 1)) == 0) {
            const long grp = col >> groupShift;
            const float sa = sc[row * groupsPerRow + grp], sb = sc[row8 * groupsPerRow + grp];
#pragma unroll
            for (int nb = 0; nb < NB; nb++) {
              acc[nb][0] += sa * part[nb][0];
              acc[nb][1] += sa * part[nb][1];
              acc[nb][2] += sb * part[nb][2];
              acc[nb][3] += sb * part[nb][3];
#pragma unroll
              for (int i = 0; i < 4; i++) part[nb][i] = 0.f;
            }
          }
        }
      }
    }
    __syncthreads();  // this buffer is read: the next iteration's staging may overwrite it
  }
  cp_async_wait<0>();
  if (rowGroup) {
    const float sa = sc[row * groupsPerRow], sb = sc[row8 * groupsPerRow];
#pragma unroll
    for (int nb = 0; nb < NB; nb++) {
      acc[nb][0] = sa * part[nb][0];
      acc[nb][1] = sa * part[nb][1];
      acc[nb][2] = sb * part[nb][2];
      acc[nb][3] = sb * part[nb][3];
    }
  }
  const int o0 = tile * 16 + g;
  if (gridDim.z > 1) {
    if (live) {
#pragma unroll
      for (int nb = 0; nb < NB; nb++)
#pragma unroll
        for (int i = 0; i < 4; i++) {
          const long e = mqw_elem(r0, o0, nb, i, t, n, out);
          if (e >= 0) partial[(long)blockIdx.z * n * out + e] = acc[nb][i];
        }
    }
    __threadfence();  // this block's partial sums are visible before it is counted
    __syncthreads();
    if (threadIdx.x == 0) {
      const int slot = blockIdx.y * gridDim.x + blockIdx.x;
      const int prev = atomicAdd(counters + slot, 1);
      mqwLast = prev == (int)gridDim.z - 1;
      if (mqwLast) counters[slot] = 0;  // every split has arrived: ready for the next launch
    }
    __syncthreads();
    if (!mqwLast) return;
    __threadfence();
    // split by split, all of a lane's sums at once: 32 independent loads per split, not a chain
    // of dependent ones per sum (that chain was most of the launch in ncu)
#pragma unroll
    for (int nb = 0; nb < NB; nb++)
#pragma unroll
      for (int i = 0; i < 4; i++) acc[nb][i] = 0.f;
    for (int z = 0; z < (int)gridDim.z; z++) {
#pragma unroll
      for (int nb = 0; nb < NB; nb++)
#pragma unroll
        for (int i = 0; i < 4; i++) {
          const long e = mqw_elem(r0, o0, nb, i, t, n, out);
          if (live && e >= 0) acc[nb][i] += __ldcg(partial + (long)z * n * out + e);
        }
    }
  }
  if (!live) return;
#pragma unroll
  for (int nb = 0; nb < NB; nb++)
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const long e = mqw_elem(r0, o0, nb, i, t, n, out);
      if (e >= 0) store_out(y, e, acc[nb][i], accumulate);
    }
}

// grid and shared memory as mqw_impl; block: 32 * MQW_WARPS.
#define MQW_KERNEL(NAME, CODE)                                                                   \
  extern "C" __global__ void __launch_bounds__(32 * MQW_WARPS) NAME(                             \
      const unsigned char* w, const float* s, const unsigned char* z, float* y, int out,         \
      int groupShift, int groupsPerRow, const unsigned short* xh, int in, int n, int accumulate, \
      float* partial, int* counters) {                                                           \
    mqw_impl<CODE>(w, s, z, y, out, groupShift, groupsPerRow, xh, in, n, accumulate, partial,    \
                   counters);                                                                    \
  }
MQW_KERNEL(mqw4, MQC_I4)
MQW_KERNEL(mqw8i, MQC_I8)
MQW_KERNEL(mqw8e, MQC_E4M3)

// tile[(row - row0) * in + col] = W[row][col] (dtype F32, F16 or BF16) for row0 <= row < row0 +
// rows from a tiled layout: 4-bit codes (fmt < 0) as scale * (code - zero), 8-bit codes of format
// fmt (QF_INT8 or QF_E4M3) as scale * decoded code, in F32 as the layout's scalar decoder
// (QuantizedLayout.value), then rounded. One thread per 4-byte word (8 or 4 codes).
extern "C" __global__ void dequant_tiled(const unsigned char* w, const float* scales,
                                         const unsigned char* zeros, int fmt, int groupShift,
                                         int groupsPerRow, void* out, int dtype, int row0,
                                         int rows, int totalRows, int in) {
  pdl_enter();
  const bool four = fmt < 0;
  const int chunks = four ? in >> 6 : in >> 5;
  const long tile0 = row0 >> 4;
  const long words = (long)(((row0 + rows + 15) >> 4) - tile0) * chunks * 128;
  for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < words;
       i += (long)gridDim.x * blockDim.x) {
    long wi = tile0 * chunks * 128 + i;  // word index in the layout
    unsigned q = *(const unsigned*)(w + 4 * wi);
    int j = (int)(wi & 3), lane = (int)((wi >> 2) & 31);
    long tc = wi >> 7;
    long rt = tc / chunks;
    int kc = (int)(tc - rt * chunks);
    int gg = lane >> 2, t = lane & 3;
    if (four) {
#pragma unroll
      for (int k = 0; k < 8; k++) {
        long r = rt * 16 + gg + 8 * (k & 1);
        if (r < row0 || r >= row0 + rows || r >= totalRows) continue;
        int col = kc * 64 + 16 * j + 4 * t + (k & 2) + (k >> 2);
        long gi = r * groupsPerRow + (col >> groupShift);
        int z = zeros ? zeros[gi] : 8;
        float v = scales[gi] * (float)((int)((q >> (4 * k)) & 15u) - z);
        store_elem(out, (r - row0) * in + col, dtype, v);
      }
      continue;
    }
    long r = rt * 16 + gg + 8 * (j & 1);
    if (r < row0 || r >= row0 + rows || r >= totalRows) continue;
    int col0 = kc * 32 + 16 * (j >> 1) + 4 * t;
    float s = scales[r * groupsPerRow + (col0 >> groupShift)];
#pragma unroll
    for (int e = 0; e < 4; e++) {
      float v = s * decode8((q >> (8 * e)) & 0xffu, fmt);
      store_elem(out, (r - row0) * in + col0 + e, dtype, v);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// W8A8 (prefill and large batches with INT8 per-channel or FP8 E4M3 weights): the activations are
// quantized per row (per token) with a dynamic scale, cuBLASLt multiplies codes by codes on the
// tensor cores (FP8: E4M3 x E4M3, F32 accumulate; INT8: int32 accumulate), and an epilogue applies
// both scales: y[r][c] (+)= acc[r][c] * rowScale[r] * colScale[c]. The weights are read as
// uploaded (no tile decode), a byte per weight once per product.

// One activation value's code under w8a8_quantize's row factor inv (M / amax).
__device__ __forceinline__ unsigned char w8a8_code(float x, float inv, int fmt) {
  float v = __fmul_rn(x, inv);
  if (fmt == QF_INT8) {
    int q = (int)floorf(__fadd_rn(v, 0.5f));
    return (unsigned char)(signed char)max(-127, min(127, q));
  }
  return e4m3_code(v);
}

#define W8A8_ROW_VECS 16  // w8a8_quantize's float4 registers per thread: rows to 16,384 at 256 threads

// One row's codes o[0..ldq) and scale *scale from its values: value(c) for c < in, value4(q) for
// the four at 4q (the same floats as value). The absmax a gives scale a / maxCode (127 INT8, 448
// E4M3; 0 for a zero row) and codes of value * (maxCode / a), INT8 rounded half up and clamped to
// +-127, E4M3 round to nearest even and saturating (the KV cache's encoders, so the scalar
// reference is theirs); columns in..ldq are zero codes (the padding cuBLASLt multiplies with the
// weights' zero padding). With quads (in / 4 when in and ldq are multiples of 4 and the rows
// aligned for float4 loads and 4-byte stores; else 0) at most W8A8_ROW_VECS per thread, each thread
// takes its whole share of the row at once and keeps it in registers for the codes: one pass with
// every load in flight (reading the row twice, one load in flight per thread, took 10.6 us for 256
// rows of 4,096 on an H100, ~1.4 us of bytes; perf/RESULTS.md, session 26). Otherwise the values
// are taken twice. The same codes either way: the maximum does not depend on the order of its
// operands. Every thread of the block calls it; thread 0 writes *scale last.
template <class Value, class Value4>
__device__ __forceinline__ void w8a8_code_row(Value value, Value4 value4, int in, int quads,
                                              unsigned char* o, int ldq, float* scale, int fmt) {
  __shared__ float red[32];
  float maxCode = fmt == QF_INT8 ? 127.f : 448.f;
  float amax = 0.f;
  if (quads > 0 && quads <= W8A8_ROW_VECS * (int)blockDim.x) {
    float4 v[W8A8_ROW_VECS];
#pragma unroll
    for (int k = 0; k < W8A8_ROW_VECS; k++) {
      int q = threadIdx.x + k * blockDim.x;
      v[k] = q < quads ? value4(q) : make_float4(0.f, 0.f, 0.f, 0.f);
    }
#pragma unroll
    for (int k = 0; k < W8A8_ROW_VECS; k++) {
      amax = fmaxf(amax, fmaxf(fmaxf(fabsf(v[k].x), fabsf(v[k].y)), fmaxf(fabsf(v[k].z), fabsf(v[k].w))));
    }
    amax = block_max(amax, red);
    float inv = amax == 0.f ? 0.f : maxCode / amax;
#pragma unroll
    for (int k = 0; k < W8A8_ROW_VECS; k++) {
      int q = threadIdx.x + k * blockDim.x;
      if (q < quads) {
        unsigned word = (unsigned)w8a8_code(v[k].x, inv, fmt) |
                        (unsigned)w8a8_code(v[k].y, inv, fmt) << 8 |
                        (unsigned)w8a8_code(v[k].z, inv, fmt) << 16 |
                        (unsigned)w8a8_code(v[k].w, inv, fmt) << 24;
        ((unsigned*)o)[q] = word;
      }
    }
    for (int c = in + threadIdx.x; c < ldq; c += blockDim.x) o[c] = 0;
  } else {
    for (int c = threadIdx.x; c < in; c += blockDim.x) amax = fmaxf(amax, fabsf(value(c)));
    amax = block_max(amax, red);
    float inv = amax == 0.f ? 0.f : maxCode / amax;
    for (int c = threadIdx.x; c < ldq; c += blockDim.x) o[c] = c < in ? w8a8_code(value(c), inv, fmt) : 0;
  }
  if (threadIdx.x == 0) *scale = amax == 0.f ? 0.f : amax / maxCode;
}

// The quads w8a8_code_row may take per row of `in` values with codes at `codes` (rows ldq apart),
// else 0: whole quads and 4-byte code stores, and the caller's float4 loads aligned (loadsAligned).
__device__ __forceinline__ int w8a8_quads(bool loadsAligned, int in, const void* codes, int ldq) {
  bool aligned = loadsAligned && (in & 3) == 0 && (ldq & 3) == 0 &&
                 ((unsigned long long)codes & 3) == 0;
  return aligned ? in >> 2 : 0;
}

// codes[r][0..ldq) and rowScale[r] for r < n from the F32 activations x[r][0..in) (grid: n,
// block: 256), as w8a8_code_row says.
extern "C" __global__ void w8a8_quantize(const float* x, int in, unsigned char* codes, int ldq,
                                         float* rowScale, int fmt) {
  pdl_enter();
  int r = blockIdx.x;
  const float* row = x + (long)r * in;
  w8a8_code_row([&](int c) { return row[c]; },
                [&](int q) { return ((const float4*)row)[q]; }, in,
                w8a8_quads(((unsigned long long)x & 15) == 0, in, codes, ldq), codes + (long)r * ldq,
                ldq, rowScale + r, fmt);
}

// The gate/up W8A8 products' epilogues, SwiGLU and the down product's w8a8_quantize in one pass
// (grid: n, block: 256): gate[r][c] = accGate[r][c] * rowScale[r] * colGate[c] and up alike (as
// w8a8_epilogue computes them), h = gate / (1 + exp(-gate)) * up (as swiglu), then row r's codes
// and scale of h (as w8a8_quantize): the same floats in the same order, so the same codes, where
// the four launches wrote the two F32 products, read them back, wrote h and read it twice (at 256
// rows of 14,336: 2 x 14.8 + 17.4 + 9.3 us on an H100, perf/RESULTS.md session 27). accGate and
// accUp: rows ldAcc apart, int32 (accInt) or F32. outScale may be rowScale: each block reads its
// row's scale before it writes it.
extern "C" __global__ void w8a8_swiglu_quantize(const void* accGate, const void* accUp, int ldAcc,
                                                int accInt, const float* rowScale,
                                                const float* colGate, const float* colUp, int in,
                                                unsigned char* codes, int ldq, float* outScale,
                                                int fmt) {
  pdl_enter();
  int r = blockIdx.x;
  float rs = rowScale[r];  // read by every thread before w8a8_code_row's barrier, then written
  long a = (long)r * ldAcc;
  auto acc = [&](const void* p, int c) {
    return accInt ? (float)((const int*)p)[a + c] : ((const float*)p)[a + c];
  };
  auto h = [&](float g, float u) { return g / (1.f + expf(-g)) * u; };
  auto value = [&](int c) {
    return h(acc(accGate, c) * rs * colGate[c], acc(accUp, c) * rs * colUp[c]);
  };
  auto value4 = [&](int q) {
    int c = 4 * q;
    return make_float4(value(c), value(c + 1), value(c + 2), value(c + 3));
  };
  // value4 loads element by element (int32 or F32 accumulators), so no load alignment is needed
  w8a8_code_row(value, value4, in, w8a8_quads(true, in, codes, ldq), codes + (long)r * ldq, ldq,
                outScale + r, fmt);
}

// y[r][c] (+)= acc[r][c] * rowScale[r] * colScale[c] for r < n, c < out; acc rows ldAcc apart,
// int32 (accInt) or F32. grid-stride over n * out.
extern "C" __global__ void w8a8_epilogue(const void* acc, int ldAcc, int accInt,
                                         const float* rowScale, const float* colScale, float* y,
                                         int out, int n, int accumulate) {
  pdl_enter();
  long total = (long)n * out;
  for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < total;
       i += (long)gridDim.x * blockDim.x) {
    int r = (int)(i / out);
    int c = (int)(i - (long)r * out);
    long a = (long)r * ldAcc + c;
    float v = accInt ? (float)((const int*)acc)[a] : ((const float*)acc)[a];
    store_out(y, i, v * rowScale[r] * colScale[c], accumulate);
  }
}
