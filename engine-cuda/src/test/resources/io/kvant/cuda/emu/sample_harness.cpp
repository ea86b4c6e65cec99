// Runs kvant.cu's `sample` kernel on the CPU under shim.h (SampleKernelOnTheCpuTest extracts it
// into kernel.inc).
//   harness IN OUT: IN holds int rows, int vocab, float temp[rows], int topK[rows],
//   float topP[rows], float minP[rows], u64 seeds[rows], float logits[rows * vocab]
//   (little-endian); OUT gets
//   int ids[rows].
#include <cstdio>
#include <cstdlib>

#include "shim.h"
#include "kernel.inc"

int main(int argc, char** argv) {
  FILE* in = emu_open_input(argc, argv);
  int rows, vocab;
  emu_read_all(in, &rows, 1, "rows");
  emu_read_all(in, &vocab, 1, "vocab");
  std::vector<float> temp(rows), topP(rows), minP(rows), logits((size_t)rows * vocab);
  std::vector<int> topK(rows), out(rows, -7);
  std::vector<u64> seeds(rows);
  emu_read_all(in, temp.data(), rows, "temperatures");
  emu_read_all(in, topK.data(), rows, "top-k");
  emu_read_all(in, topP.data(), rows, "top-p");
  emu_read_all(in, minP.data(), rows, "min-p");
  emu_read_all(in, seeds.data(), rows, "seeds");
  emu_read_all(in, logits.data(), logits.size(), "logits");
  fclose(in);
  emu_launch(rows, SAMPLE_THREADS, [&] {
    sample(logits.data(), vocab, temp.data(), topK.data(), topP.data(), minP.data(), seeds.data(),
           out.data());
  });
  FILE* o = fopen(argv[2], "wb");
  if (!o || fwrite(out.data(), sizeof(int), rows, o) != (size_t)rows) {
    perror(argv[2]);
    return 2;
  }
  fclose(o);
  return 0;
}
