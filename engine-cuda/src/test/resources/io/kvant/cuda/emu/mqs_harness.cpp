// Runs kvant.cu's mqs kernels (the staged one-row products) on the CPU under shim.h, mq_shim.h and
// attn_shim.h (MqsKernelOnTheCpuTest cuts them, and the helpers they call, into kernel.inc).
//   harness IN OUT: IN holds int codes (0 INT4, 1 INT8, 2 FP8 E4M3), split (0 K8S4, 1 K8S8,
//   2 K16S4), form (0 plain, 1 norm, 2 swiglu, 3 swiglu_norm), out, in, n, groupShift,
//   groupsPerRow, accumulate, scaleCount, zeroCount, codeBytes; float eps; then for each of the
//   form's matrices (two with SwiGLU: gate, up) the tiled codes (codeBytes), float
//   scales[scaleCount] and zero points (zeroCount bytes; none: symmetric); float x[n * in], float
//   normW[in], float y[n * out] (the outputs before the launch); all little-endian. OUT gets float
//   y[n * out] after the launch.
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "attn_shim.h"

inline void cp_async16(void* smem, const void* gmem) { std::memcpy(smem, gmem, 16); }

#include "kernel.inc"

typedef void (*Mqs)(const unsigned char*, const float*, const unsigned char*, float*, int,
                    const unsigned char*, const float*, const unsigned char*, float*, int,
                    const unsigned char*, const float*, const unsigned char*, float*, int, int, int,
                    const float*, int, int, int, const float*, float);

#define MQS_ROW(P)                                                                  \
  {P##_k8s4_plain, P##_k8s4_norm, P##_k8s4_swiglu, P##_k8s4_swiglu_norm},         \
      {P##_k8s8_plain, P##_k8s8_norm, P##_k8s8_swiglu, P##_k8s8_swiglu_norm},     \
  {                                                                                 \
    P##_k16s4_plain, P##_k16s4_norm, P##_k16s4_swiglu, P##_k16s4_swiglu_norm        \
  }
static const Mqs kKernels[3][3][4] = {{MQS_ROW(mq4)}, {MQS_ROW(mq8i)}, {MQS_ROW(mq8e)}};
static const int kWarps[3] = {8, 8, 16};

int main(int argc, char** argv) {
  FILE* in = emu_open_input(argc, argv);
  int h[12];
  float eps;
  emu_read_all(in, h, 12, "header");
  emu_read_all(in, &eps, 1, "eps");
  const int codes = h[0], split = h[1], form = h[2], out = h[3], width = h[4], n = h[5],
            groupShift = h[6], groupsPerRow = h[7], accumulate = h[8], scaleCount = h[9],
            zeroCount = h[10], codeBytes = h[11];
  const int matrices = form >= 2 ? 2 : 1;
  std::vector<unsigned char> w[2], zeros[2];
  std::vector<float> scales[2];
  for (int m = 0; m < matrices; m++) {
    w[m].resize(codeBytes);
    scales[m].resize(scaleCount);
    zeros[m].resize(zeroCount);
    emu_read_all(in, w[m].data(), w[m].size(), "codes");
    emu_read_all(in, scales[m].data(), scales[m].size(), "scales");
    emu_read_all(in, zeros[m].data(), zeros[m].size(), "zero points");
  }
  std::vector<float> x((size_t)n * width), normW(width), y((size_t)n * out);
  emu_read_all(in, x.data(), x.size(), "activations");
  emu_read_all(in, normW.data(), normW.size(), "norm weights");
  emu_read_all(in, y.data(), y.size(), "outputs");
  fclose(in);
  const unsigned char* z0 = zeroCount ? zeros[0].data() : nullptr;
  const unsigned char* z1 = zeroCount && matrices == 2 ? zeros[1].data() : nullptr;
  emuBlockStart = emu_mq_block_start;
  const Mqs kernel = kKernels[codes][split][form];
  // SwiGLU: gate and up share the tiles (the grid is the gate's); otherwise one matrix
  emu_launch((out + 15) / 16, 32 * kWarps[split], [&] {
    kernel(w[0].data(), scales[0].data(), z0, y.data(), out,
           matrices == 2 ? w[1].data() : nullptr, matrices == 2 ? scales[1].data() : nullptr, z1,
           nullptr, matrices == 2 ? out : 0, nullptr, nullptr, nullptr, nullptr, 0, groupShift,
           groupsPerRow, x.data(), width, n, accumulate, form == 1 || form == 3 ? normW.data() : nullptr,
           eps);
  });
  emu_write_all(argv[2], y.data(), y.size());
  return 0;
}
