// Runs kvant.cu's mqs kernels (the staged one-row products) on the CPU under shim.h, mq_shim.h and
// attn_shim.h (MqsKernelOnTheCpuTest cuts them, and the helpers they call, into kernel.inc).
//   harness IN OUT: IN holds int codes (0 INT4, 1 INT8, 2 FP8 E4M3), split (0 K8S4, 1 K8S8,
//   2 K16S4), form (0 plain, 1 norm, 2 swiglu, 3 swiglu_norm), out, in, n, groupShift,
//   groupsPerRow, accumulate, scaleCount, zeroCount, codeBytes, columns (blocks per tile, each a
//   share of its columns); float eps; then for each of the
//   form's matrices (two with SwiGLU: gate, up) the tiled codes (codeBytes), float
//   scales[scaleCount] and zero points (zeroCount bytes; none: symmetric); float x[n * in], float
//   normW[in], float y[n * out] (the outputs before the launch); all little-endian. OUT gets float
//   y[n * out] after the launch, which runs twice (the second time with the blocks in reverse
//   order, so another block of each tile adds its column splits) and must give the same bits.
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "attn_shim.h"

inline void cp_async16(void* smem, const void* gmem) { std::memcpy(smem, gmem, 16); }

#include "kernel.inc"

typedef void (*Mqs)(const unsigned char*, const float*, const unsigned char*, float*, int,
                    const unsigned char*, const float*, const unsigned char*, float*, int,
                    const unsigned char*, const float*, const unsigned char*, float*, int, int, int,
                    const float*, int, int, int, const float*, float, float*, int*);

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
  int h[13];
  float eps;
  emu_read_all(in, h, 13, "header");
  emu_read_all(in, &eps, 1, "eps");
  const int codes = h[0], split = h[1], form = h[2], out = h[3], width = h[4], n = h[5],
            groupShift = h[6], groupsPerRow = h[7], accumulate = h[8], scaleCount = h[9],
            zeroCount = h[10], codeBytes = h[11], columns = h[12];
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
  const unsigned tiles = (out + 15) / 16;
  std::vector<float> partial((size_t)columns * tiles * matrices * 128);
  std::vector<int> counters(tiles, 0);
  std::vector<float> yBefore = y;
  // SwiGLU: gate and up share the tiles (the grid is the gate's); otherwise one matrix
  auto launch = [&](std::vector<float>& dst) {
    emu_launch3(tiles, columns, 1, 32 * kWarps[split], [&] {
      kernel(w[0].data(), scales[0].data(), z0, dst.data(), out,
             matrices == 2 ? w[1].data() : nullptr, matrices == 2 ? scales[1].data() : nullptr, z1,
             nullptr, matrices == 2 ? out : 0, nullptr, nullptr, nullptr, nullptr, 0, groupShift,
             groupsPerRow, x.data(), width, n, accumulate,
             form == 1 || form == 3 ? normW.data() : nullptr, eps, partial.data(), counters.data());
    });
    for (int c : counters) {
      if (c != 0) {
        fprintf(stderr, "harness: a column-split counter was left at %d\n", c);
        exit(3);
      }
    }
  };
  launch(y);
  emuReverseBlocks = true;
  launch(yBefore);
  emuReverseBlocks = false;
  if (std::memcmp(y.data(), yBefore.data(), y.size() * sizeof(float)) != 0) {
    fprintf(stderr, "harness: blocks in reverse order gave other bits\n");
    return 4;
  }
  FILE* o = fopen(argv[2], "wb");
  if (!o || fwrite(y.data(), sizeof(float), y.size(), o) != y.size()) {
    perror(argv[2]);
    return 2;
  }
  fclose(o);
  return 0;
}
