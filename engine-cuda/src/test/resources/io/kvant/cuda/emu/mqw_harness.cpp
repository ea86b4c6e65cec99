// Runs kvant.cu's mqw kernels on the CPU under shim.h and mq_shim.h (MqwKernelOnTheCpuTest cuts
// them, and the helpers they call, into kernel.inc).
//   harness IN OUT: IN holds int codes (0 INT4, 1 INT8, 2 FP8 E4M3), out, in, n, groupShift,
//   groupsPerRow, accumulate, splits, scaleCount, zeroCount, codeBytes; then the tiled codes
//   (codeBytes), float scales[scaleCount], zero points (zeroCount bytes; none: symmetric),
//   F16 activations xh[n * in] (2 bytes each), float y[n * out] (the outputs before the launch);
//   all little-endian. OUT gets float y[n * out] after the launch.
#include <cstdio>
#include <cstdlib>

#include "mq_shim.h"
#include "kernel.inc"

int main(int argc, char** argv) {
  FILE* in = emu_open_input(argc, argv);
  int h[11];
  emu_read_all(in, h, 11, "header");
  const int codes = h[0], out = h[1], width = h[2], n = h[3], groupShift = h[4],
            groupsPerRow = h[5], accumulate = h[6], splits = h[7], scaleCount = h[8],
            zeroCount = h[9], codeBytes = h[10];
  std::vector<unsigned char> w(codeBytes), zeros(zeroCount);
  std::vector<float> scales(scaleCount), y((size_t)n * out), partial((size_t)splits * n * out);
  std::vector<unsigned short> xh((size_t)n * width);
  emu_read_all(in, w.data(), w.size(), "codes");
  emu_read_all(in, scales.data(), scales.size(), "scales");
  emu_read_all(in, zeros.data(), zeros.size(), "zero points");
  emu_read_all(in, xh.data(), xh.size(), "activations");
  emu_read_all(in, y.data(), y.size(), "outputs");
  fclose(in);
  const unsigned tiles = (out + 15) / 16;
  const unsigned bx = (tiles + MQW_WARPS - 1) / MQW_WARPS, by = (n + MQW_NT - 1) / MQW_NT;
  std::vector<int> counters(bx * by, 0);
  const unsigned char* z = zeroCount ? zeros.data() : nullptr;
  emuBlockStart = emu_mq_block_start;
  std::vector<float> yBefore = y;
  auto launch = [&](std::vector<float>& dst) {
    emu_launch3(bx, by, splits, 32 * MQW_WARPS, [&] {
      auto run = [&](auto kernel) {
        kernel(w.data(), scales.data(), z, dst.data(), out, groupShift, groupsPerRow, xh.data(),
               width, n, accumulate, partial.data(), counters.data());
      };
      if (codes == 0) run(mqw4);
      else if (codes == 1) run(mqw8i);
      else run(mqw8e);
    });
    for (unsigned c : counters) {
      if (c != 0) {
        fprintf(stderr, "harness: a split counter was left at %u\n", c);
        exit(3);
      }
    }
  };
  launch(y);
  // again with the blocks in the opposite order, so another split of each tile is the last to
  // arrive and adds the splits: the same bits
  emuReverseBlocks = true;
  launch(yBefore);
  emuReverseBlocks = false;
  if (std::memcmp(y.data(), yBefore.data(), y.size() * sizeof(float)) != 0) {
    fprintf(stderr, "harness: blocks in reverse order gave other bits\n");
    return 4;
  }
  emu_write_all(argv[2], y.data(), y.size());
  return 0;
}
