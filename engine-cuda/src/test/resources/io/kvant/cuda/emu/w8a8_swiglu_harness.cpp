// Runs kvant.cu's w8a8_swiglu_quantize on the CPU under shim.h, mq_shim.h and attn_shim.h, and the
// four launches it replaces (w8a8_epilogue of gate and of up, swiglu, w8a8_quantize) on the same
// input, for W8a8QuantizeKernelOnTheCpuTest.
//   harness IN OUT: IN holds ints n, in, ldAcc, ldq, fmt, accInt, threads; then 4-byte words
//   accGate[n * ldAcc], accUp[n * ldAcc] (int32 or float bits, little-endian), floats rowScale[n],
//   colGate[in], colUp[in]. OUT gets the fused kernel's codes[n * ldq] and scales[n], then the four
//   launches' codes[n * ldq] and scales[n] (code buffers start filled with 0x55).
#include <cstdio>
#include <cstdlib>

#include "attn_shim.h"
#include "kernel.inc"

int main(int argc, char** argv) {
  FILE* in = emu_open_input(argc, argv);
  int h[7];
  emu_read_all(in, h, 7, "header");
  const int n = h[0], width = h[1], ldAcc = h[2], ldq = h[3], fmt = h[4], accInt = h[5],
            threads = h[6];
  std::vector<unsigned> gate((size_t)n * ldAcc), up((size_t)n * ldAcc);
  std::vector<float> rowScale(n), colGate(width), colUp(width);
  emu_read_all(in, gate.data(), gate.size(), "accGate");
  emu_read_all(in, up.data(), up.size(), "accUp");
  emu_read_all(in, rowScale.data(), n, "rowScale");
  emu_read_all(in, colGate.data(), width, "colGate");
  emu_read_all(in, colUp.data(), width, "colUp");
  fclose(in);

  std::vector<unsigned char> fused((size_t)n * ldq, 0x55), apart((size_t)n * ldq, 0x55);
  std::vector<float> fusedScale(rowScale), apartScale(n, -1.f);
  emu_launch(n, threads, [&] {
    w8a8_swiglu_quantize(gate.data(), up.data(), ldAcc, accInt, fusedScale.data(), colGate.data(),
                         colUp.data(), width, fused.data(), ldq, fusedScale.data(), fmt);
  });

  std::vector<float> g((size_t)n * width), u((size_t)n * width), hh((size_t)n * width);
  emu_launch(8, 64, [&] {
    w8a8_epilogue(gate.data(), ldAcc, accInt, rowScale.data(), colGate.data(), g.data(), width, n, 0);
  });
  emu_launch(8, 64, [&] {
    w8a8_epilogue(up.data(), ldAcc, accInt, rowScale.data(), colUp.data(), u.data(), width, n, 0);
  });
  emu_launch(8, 64, [&] { swiglu(g.data(), u.data(), hh.data(), (long)n * width, DT_F32); });
  emu_launch(n, threads, [&] {
    w8a8_quantize(hh.data(), width, apart.data(), ldq, apartScale.data(), fmt);
  });

  FILE* o = fopen(argv[2], "wb");
  if (!o || fwrite(fused.data(), 1, fused.size(), o) != fused.size() ||
      fwrite(fusedScale.data(), sizeof(float), n, o) != (size_t)n ||
      fwrite(apart.data(), 1, apart.size(), o) != apart.size() ||
      fwrite(apartScale.data(), sizeof(float), n, o) != (size_t)n) {
    perror(argv[2]);
    return 2;
  }
  fclose(o);
  return 0;
}
