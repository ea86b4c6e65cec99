// Runs kvant.cu's mqp4 kernels (one-row INT4 products on row pairs) and their repack from the
// tiled layout on the CPU under shim.h, mq_shim.h and attn_shim.h (MqpKernelOnTheCpuTest cuts them
// into kernel.inc).
//   harness IN OUT: IN holds int form (0 plain, 1 norm, 2 swiglu, 3 swiglu_norm), in, accumulate,
//   matrices (1-3; 2 with SwiGLU: gate, up), groupsPerRow, rounds (row pairs a warp takes in
//   turn), then per matrix out, codeBytes, scaleCount; float eps; per matrix its tiled codes (codeBytes) and float scales[scaleCount];
//   float x[in], float normW[in], then the outputs before the launch: y[out] per matrix (SwiGLU:
//   the gate's only). All little-endian. OUT gets the outputs after the launch, in that order.
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "attn_shim.h"

#include "kernel.inc"

typedef void (*Mqp)(const unsigned char*, float*, int, const unsigned char*, float*, int,
                    const unsigned char*, float*, int, const float*, int, int, const float*, float, int);
static const Mqp kKernels[4] = {mqp4_plain, mqp4_norm, mqp4_swiglu, mqp4_swiglu_norm};

static void repack(const std::vector<unsigned char>& w, const std::vector<float>& s, int in,
                   int groupsPerRow, std::vector<unsigned char>& units, int pairs, int mul, int add,
                   int side) {
  const long words = (long)pairs * (in / MQP_UNIT_COLS) * (MQP_UNIT_BYTES / 4);
  emu_launch((unsigned)((words + 255) / 256), 256, [&] {
    mqp4_repack(w.data(), s.data(), in, groupsPerRow, units.data(), pairs, mul, add, side);
  });
}

int main(int argc, char** argv) {
  FILE* f = emu_open_input(argc, argv);
  int h[6];
  emu_read_all(f, h, 6, "header");
  const int form = h[0], in = h[1], accumulate = h[2], matrices = h[3], groupsPerRow = h[4];
  const int rounds = h[5], per = MQP_WARPS * rounds;
  const bool swiglu = form >= 2;
  int out[3] = {0, 0, 0}, codeBytes[3], scaleCount[3];
  for (int m = 0; m < matrices; m++) {
    int d[3];
    emu_read_all(f, d, 3, "matrix header");
    out[m] = d[0];
    codeBytes[m] = d[1];
    scaleCount[m] = d[2];
  }
  float eps;
  emu_read_all(f, &eps, 1, "eps");
  std::vector<unsigned char> w[3];
  std::vector<float> s[3];
  for (int m = 0; m < matrices; m++) {
    w[m].resize(codeBytes[m]);
    s[m].resize(scaleCount[m]);
    emu_read_all(f, w[m].data(), w[m].size(), "codes");
    emu_read_all(f, s[m].data(), s[m].size(), "scales");
  }
  std::vector<float> x(in), normW(in);
  emu_read_all(f, x.data(), x.size(), "activations");
  emu_read_all(f, normW.data(), normW.size(), "norm weights");
  const int outputs = swiglu ? 1 : matrices;
  std::vector<float> y[3];
  for (int m = 0; m < outputs; m++) {
    y[m].resize(out[m]);
    emu_read_all(f, y[m].data(), y[m].size(), "outputs");
  }
  fclose(f);
  const int upr = in / MQP_UNIT_COLS;
  std::vector<unsigned char> units[3];
  if (swiglu) {
    units[0].assign((size_t)out[0] * upr * 2 * MQP_UNIT_BYTES, 0xAB);
    repack(w[0], s[0], in, groupsPerRow, units[0], out[0], 1, 0, 0);
    repack(w[1], s[1], in, groupsPerRow, units[0], out[0], 1, 0, 1);
  } else {
    for (int m = 0; m < matrices; m++) {
      units[m].assign((size_t)(out[m] / 2) * upr * 2 * MQP_UNIT_BYTES, 0xAB);
      repack(w[m], s[m], in, groupsPerRow, units[m], out[m] / 2, 2, 0, 0);
      repack(w[m], s[m], in, groupsPerRow, units[m], out[m] / 2, 2, 1, 1);
    }
  }
  int blocks = ((swiglu ? out[0] : out[0] / 2) + per - 1) / per;
  for (int m = 1; m < outputs; m++) blocks += (out[m] / 2 + per - 1) / per;
  auto ptr = [&](int m) { return m < outputs ? units[m].data() : (unsigned char*)nullptr; };
  auto yp = [&](int m) { return m < outputs ? y[m].data() : (float*)nullptr; };
  auto rows = [&](int m) { return m < outputs ? out[m] : 0; };
  emu_launch(blocks, 32 * MQP_WARPS, [&] {
    kKernels[form](ptr(0), yp(0), rows(0), ptr(1), yp(1), rows(1), ptr(2), yp(2), rows(2), x.data(),
                   in, accumulate, form == 1 || form == 3 ? normW.data() : nullptr, eps, rounds);
  });
  std::vector<float> all;
  for (int m = 0; m < outputs; m++) all.insert(all.end(), y[m].begin(), y[m].end());
  emu_write_all(argv[2], all.data(), all.size());
  return 0;
}
