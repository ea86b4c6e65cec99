// Runs kvant.cu's w8a8_quantize on the CPU under shim.h, mq_shim.h and attn_shim.h
// (W8a8QuantizeKernelOnTheCpuTest cuts it, and what it calls, into kernel.inc).
//   harness IN OUT: IN holds ints n, in, ldq, fmt, threads; float x[n * in] (little-endian). OUT
//   gets unsigned char codes[n * ldq] (the buffer starts filled with 0x55, so a column the kernel
//   leaves unwritten shows), then float rowScale[n].
#include <cstdio>
#include <cstdlib>

#include "attn_shim.h"
#include "kernel.inc"

int main(int argc, char** argv) {
  FILE* in = emu_open_input(argc, argv);
  int h[5];
  emu_read_all(in, h, 5, "header");
  const int n = h[0], width = h[1], ldq = h[2], fmt = h[3], threads = h[4];
  std::vector<float> x((size_t)n * width), scales(n, -1.f);
  emu_read_all(in, x.data(), x.size(), "x");
  fclose(in);
  std::vector<unsigned char> codes((size_t)n * ldq, 0x55);
  emu_launch(n, threads, [&] { w8a8_quantize(x.data(), width, codes.data(), ldq, scales.data(), fmt); });
  FILE* o = fopen(argv[2], "wb");
  if (!o || fwrite(codes.data(), 1, codes.size(), o) != codes.size() ||
      fwrite(scales.data(), sizeof(float), n, o) != (size_t)n) {
    perror(argv[2]);
    return 2;
  }
  fclose(o);
  return 0;
}
