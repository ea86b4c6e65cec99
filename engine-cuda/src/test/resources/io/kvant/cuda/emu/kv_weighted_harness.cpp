// Runs kvant.cu's centered-qmse key append on the CPU under shim.h, mq_shim.h and attn_shim.h
// (KvWeightedKernelOnTheCpuTest cuts the RoPE-to-attention section into kernel.inc), both ways the
// engine launches it: (A) rope on k, kv_weighted_parts on the rotated keys, kv_append; (B)
// kv_weighted_parts rotating the keys itself, then rope_kv_append on the unrotated ones. The two
// must give the same pool, scales and rotated k (else exit 4); OUT gets A's.
//   harness IN OUT: IN holds ints kvType, heads, kvHeads, headSize, blockSize, layers, layer, rows,
//   maxBlocks, style, tablePositions, poolBlocks, partThreads, appendThreads; int rowSeq[rows],
//   positions[rows], tables[rows * maxBlocks]; float cos[tablePositions * headSize / 2], sin[same];
//   float q[rows * heads * headSize], k[rows * kvHeads * headSize], v[same]; float
//   kMean[layers * kvHeads * headSize], kMomentT[layers * kvHeads * headSize * headSize]; all
//   little-endian. OUT: float kRot[rows * kvHeads * headSize], the pool's codes (poolBlocks *
//   layers * 2 * kvHeads * blockSize * headSize bytes), its scales (one per headSize codes).
#include <cstdio>
#include <cstdlib>

#include "attn_shim.h"
#include "kernel.inc"

int main(int argc, char** argv) {
  FILE* in = emu_open_input(argc, argv);
  int h[14];
  emu_read_all(in, h, 14, "header");
  const int kvType = h[0], heads = h[1], kvHeads = h[2], headSize = h[3], blockSize = h[4],
            layers = h[5], layer = h[6], rows = h[7], maxBlocks = h[8], style = h[9],
            tablePositions = h[10], poolBlocks = h[11], partThreads = h[12],
            appendThreads = h[13];
  auto [rowSeq, positions, tables, cosT, sinT, q, k, v] =
      emu_read_decode_rows(in, rows, maxBlocks, tablePositions, heads, kvHeads, headSize);
  const size_t stats = (size_t)layers * kvHeads * headSize;
  std::vector<float> kMean(stats), kMomentT(stats * headSize);
  emu_read_all(in, kMean.data(), stats, "kMean");
  emu_read_all(in, kMomentT.data(), kMomentT.size(), "kMomentT");
  fclose(in);

  const int kvEnc = KV_TOKEN_MSE | KV_CENTERED | KV_WEIGHTED;
  const size_t poolBytes = (size_t)poolBlocks * layers * 2 * kvHeads * blockSize * headSize;
  const size_t partFloats = (size_t)rows * kvHeads * KV_PARTS * 32;
  struct Result {
    std::vector<float> k, scales;
    std::vector<unsigned char> pool;
  };
  auto fresh = [&] {
    // poisoned: a code or scale the append does not write, or a part it reads unwritten, shows
    return Result{k, std::vector<float>(poolBytes / headSize, -3.f),
                  std::vector<unsigned char>(poolBytes, 0x5a)};
  };

  Result a = fresh();
  {
    std::vector<float> parts(partFloats, NAN);
    emu_launch(rows, 128, [&] {
      rope(a.k.data(), positions.data(), cosT.data(), sinT.data(), kvHeads, headSize, style);
    });
    emu_launch3(rows, kvHeads, KV_PARTS, partThreads, [&] {
      kv_weighted_parts(a.k.data(), 0, cosT.data(), sinT.data(), style, positions.data(),
                        kMean.data(), kMomentT.data(), kvType, layer, kvHeads, headSize,
                        parts.data());
    });
    emu_launch(rows, appendThreads, [&] {
      kv_append(a.k.data(), v.data(), a.pool.data(), a.scales.data(), nullptr, kvEnc, kvType,
                rowSeq.data(), positions.data(), tables.data(), maxBlocks, layer, layers, kvHeads,
                headSize, blockSize, kMean.data(), parts.data(), cosT.data(), sinT.data(), style);
    });
  }
  Result b = fresh();
  {
    std::vector<float> parts(partFloats, NAN), q2 = q;
    emu_launch3(rows, kvHeads, KV_PARTS, partThreads, [&] {
      kv_weighted_parts(b.k.data(), 1, cosT.data(), sinT.data(), style, positions.data(),
                        kMean.data(), kMomentT.data(), kvType, layer, kvHeads, headSize,
                        parts.data());
    });
    emu_launch(rows, appendThreads, [&] {
      rope_kv_append(q2.data(), b.k.data(), v.data(), cosT.data(), sinT.data(), heads, style,
                     b.pool.data(), b.scales.data(), nullptr, kvEnc, kvType, rowSeq.data(),
                     positions.data(), tables.data(), maxBlocks, layer, layers, kvHeads, headSize,
                     blockSize, kMean.data(), parts.data());
    });
  }
  if (a.k != b.k || a.pool != b.pool ||
      std::memcmp(a.scales.data(), b.scales.data(), a.scales.size() * sizeof(float)) != 0) {
    fprintf(stderr, "harness: rope_kv_append's path gave other bits than rope + kv_append\n");
    return 4;
  }
  FILE* o = fopen(argv[2], "wb");
  bool ok = o && fwrite(a.k.data(), sizeof(float), a.k.size(), o) == a.k.size() &&
            fwrite(a.pool.data(), 1, poolBytes, o) == poolBytes &&
            fwrite(a.scales.data(), sizeof(float), a.scales.size(), o) == a.scales.size();
  if (!ok) {
    perror(argv[2]);
    return 2;
  }
  fclose(o);
  return 0;
}
