// Just enough of CUDA's device dialect to run one kernel's source as host C++: every thread of a
// block is a std::thread, __syncthreads a barrier over the block, warp shuffles and ballots an
// exchange through a per-warp buffer between warp barriers, shared-memory atomics std::atomic_ref.
// One block runs at a time, so __shared__ variables become statics. For checking a kernel's logic
// on a machine without a GPU (SampleKernelOnTheCpuTest); not a simulator of timing, memory
// ordering or divergence.
#pragma once
#include <algorithm>
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

using std::max;
using std::min;

struct Dim3 {
  unsigned x = 0, y = 0, z = 0;
};
inline thread_local Dim3 threadIdx;
inline Dim3 blockIdx, blockDim, gridDim;

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static

struct WarpExchange {
  std::barrier<> sync{32};
  unsigned long long slot[2][32];
};
// Which of a warp's two exchange buffers this thread's next exchange uses: every lane of a warp
// makes the same exchanges in the same order, so their counts agree (threads start at 0).
inline thread_local unsigned emuExchanges = 0;
inline std::unique_ptr<std::barrier<>> emuBlockBarrier;
inline std::unique_ptr<WarpExchange[]> emuWarps;

inline void __syncthreads() { emuBlockBarrier->arrive_and_wait(); }
inline void pdl_enter() {}

// One barrier per exchange, the buffers alternating: a lane writes buffer b of exchange k + 2
// only after the barrier of exchange k + 1, which every lane reaches after its read of exchange k
// (three barriers per exchange made the shuffle-heavy harnesses futex-bound on small VMs).
template <class T>
T emu_exchange(T v, int src) {
  WarpExchange& w = emuWarps[threadIdx.x >> 5];
  unsigned long long raw = 0;
  std::memcpy(&raw, &v, sizeof(T));
  unsigned long long* slot = w.slot[emuExchanges++ & 1];
  slot[threadIdx.x & 31] = raw;
  w.sync.arrive_and_wait();
  unsigned long long got = slot[src];
  T out;
  std::memcpy(&out, &got, sizeof(T));
  return out;
}
template <class T>
T __shfl_xor_sync(unsigned, T v, int o) {
  return emu_exchange(v, (int)(threadIdx.x & 31) ^ o);
}
template <class T>
T __shfl_up_sync(unsigned, T v, int o) {
  int lane = threadIdx.x & 31;
  return emu_exchange(v, lane >= o ? lane - o : lane);
}
inline unsigned __ballot_sync(unsigned, bool p) {
  unsigned bits = 0;
  for (int l = 0; l < 32; l++) {
    // every lane reads every lane's predicate: 32 exchanges, fine for a logic check
    bits |= (emu_exchange<int>(p ? 1 : 0, l) ? 1u : 0u) << l;
  }
  return bits;
}
inline int __ffs(unsigned x) { return __builtin_ffs((int)x); }
inline unsigned __float_as_uint(float f) {
  unsigned u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float __uint_as_float(unsigned u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
template <class T>
T atomicAdd(T* p, T v) {
  return std::atomic_ref<T>(*p).fetch_add(v);
}

/** Reads n values of T from f, or exits with status 2 naming what was short. */
template <class T>
void emu_read_all(FILE* f, T* p, size_t n, const char* what) {
  if (n > 0 && fread(p, sizeof(T), n, f) != n) {
    fprintf(stderr, "harness: short read of %s\n", what);
    exit(2);
  }
}

/** The IN file of `harness IN OUT`, open for reading; exits with status 2 on a wrong call. */
inline FILE* emu_open_input(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: harness IN OUT\n");
    exit(2);
  }
  FILE* in = fopen(argv[1], "rb");
  if (!in) {
    perror(argv[1]);
    exit(2);
  }
  return in;
}

/** Writes n values of T to the file at path (the harness's OUT); exits with status 2 if it cannot. */
template <class T>
void emu_write_all(const char* path, const T* p, size_t n) {
  FILE* o = fopen(path, "wb");
  if (!o || fwrite(p, sizeof(T), n, o) != n) {
    perror(path);
    exit(2);
  }
  fclose(o);
}

/** Called at the start of every emulated block (shims of warp-wide instructions reset state). */
inline void (*emuBlockStart)(unsigned threads) = nullptr;

/**
 * Whether emu_launch3 runs a grid's blocks last to first: a kernel whose blocks hand work to the
 * last one to finish (split merges) must give the same result whichever block that is.
 */
inline bool emuReverseBlocks = false;

/**
 * Runs kernel(args...) as a grid of gx * gy * gz blocks of `threads` threads, one block at a time
 * (x fastest; all reversed with emuReverseBlocks).
 */
template <class F>
void emu_launch3(unsigned gx, unsigned gy, unsigned gz, unsigned threads, F kernel) {
  blockDim.x = threads;
  gridDim.x = gx;
  gridDim.y = gy;
  gridDim.z = gz;
  for (unsigned iz = 0; iz < gz; iz++)
    for (unsigned iy = 0; iy < gy; iy++)
      for (unsigned ix = 0; ix < gx; ix++) {
        blockIdx.x = emuReverseBlocks ? gx - 1 - ix : ix;
        blockIdx.y = emuReverseBlocks ? gy - 1 - iy : iy;
        blockIdx.z = emuReverseBlocks ? gz - 1 - iz : iz;
        emuBlockBarrier = std::make_unique<std::barrier<>>(threads);
        emuWarps = std::make_unique<WarpExchange[]>(threads / 32);
        if (emuBlockStart) emuBlockStart(threads);
        std::vector<std::thread> team;
        for (unsigned t = 0; t < threads; t++) {
          team.emplace_back([t, &kernel] {
            threadIdx.x = t;
            kernel();
          });
        }
        for (auto& th : team) th.join();
      }
}

/** Runs kernel(args...) as a grid of `blocks` blocks of `threads` threads, one block at a time. */
template <class F>
void emu_launch(unsigned blocks, unsigned threads, F kernel) {
  emu_launch3(blocks, 1, 1, threads, kernel);
}
