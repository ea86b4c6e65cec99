// Runs kvant.cu's attention_decode on the CPU under shim.h, mq_shim.h and attn_shim.h, and the
// three kernels it stands for (rope_kv_append, attention_tiled, attention_merge) on a copy of the
// same inputs (AttentionDecodeKernelOnTheCpuTest cuts them, and what they call, into kernel.inc).
//   harness IN OUT: IN holds ints kvType, heads, kvHeads, headSize, blockSize, layers, layer, rows,
//   maxBlocks, splits, splitLen, style, tablePositions, poolBytes, scaleCount, kvEnc, chanCount,
//   rowsWarps, rowsPer (attention_rows' warps per block and tiles per warp; 0: not run); float
//   scale; int
//   rowSeq[rows], positions[rows], tables[rows * maxBlocks]; float cos[tablePositions *
//   headSize / 2], sin[same]; float q[rows * heads * headSize], k[rows * kvHeads * headSize],
//   v[same]; the pool (poolBytes); float scales[scaleCount]; float kChan[chanCount] (the keys'
//   channel scales with KV_KEY_CHANNELS, else none); with KV_CENTERED in kvEnc float
//   kMean[layers * kvHeads * headSize], and with KV_WEIGHTED too float kMomentT[that * headSize]
//   (then both paths run kv_weighted_parts, rotating, before their append); all little-endian. OUT gets, for the three
//   kernels then for attention_decode: float out[rows * heads * headSize], the pool, the scales,
//   the channel scales; with rowsWarps > 0 then the same four for the three kernels under
//   attention_rows' split (its blocks times rowsWarps ranges of rowsPer tiles) and for
//   attention_rows (run twice, the second time with the blocks in reverse order: same bits), then
//   an int: how many runs of attention_rows with a block per query head (where it takes them)
//   gave those same bits (a run that does not exits 4).
#include <cstdio>
#include <cstdlib>

#include "attn_shim.h"
#include "kernel.inc"

int main(int argc, char** argv) {
  FILE* in = emu_open_input(argc, argv);
  int h[19];
  emu_read_all(in, h, 19, "header");
  const int kvType = h[0], heads = h[1], kvHeads = h[2], headSize = h[3], blockSize = h[4],
            layers = h[5], layer = h[6], rows = h[7], maxBlocks = h[8], splits = h[9],
            splitLen = h[10], style = h[11], tablePositions = h[12], poolBytes = h[13],
            scaleCount = h[14], kvEnc = h[15], chanCount = h[16], rowsWarps = h[17],
            rowsPer = h[18];
  float scale;
  emu_read_all(in, &scale, 1, "scale");
  auto [rowSeq, positions, tables, cosT, sinT, q, k, v] =
      emu_read_decode_rows(in, rows, maxBlocks, tablePositions, heads, kvHeads, headSize);
  std::vector<unsigned char> pool(poolBytes);
  std::vector<float> scales(scaleCount), chans(chanCount);
  emu_read_all(in, pool.data(), pool.size(), "pool");
  emu_read_all(in, scales.data(), scales.size(), "scales");
  emu_read_all(in, chans.data(), chans.size(), "channel scales");
  const bool centered = (kvEnc & KV_CENTERED) != 0, weighted = (kvEnc & KV_WEIGHTED) != 0;
  const size_t stats = (size_t)layers * kvHeads * headSize;
  std::vector<float> kMean(centered ? stats : 0), kMomentT(weighted ? stats * headSize : 0);
  emu_read_all(in, kMean.data(), kMean.size(), "kMean");
  emu_read_all(in, kMomentT.data(), kMomentT.size(), "kMomentT");
  fclose(in);
  const float* mean = centered ? kMean.data() : nullptr;
  // the weighted search's parts of the rows' keys (unrotated k: it rotates them itself), NaN until
  // written, so a part read unwritten shows
  const int partThreads = std::min(256, 32 * ((headSize + KV_PARTS - 1) / KV_PARTS));
  auto searchParts = [&](std::vector<float>& parts) -> const float* {
    if (!weighted) return nullptr;
    parts.assign((size_t)rows * kvHeads * KV_PARTS * 32, NAN);
    emu_launch3(rows, kvHeads, KV_PARTS, partThreads, [&] {
      kv_weighted_parts(k.data(), 1, cosT.data(), sinT.data(), style, positions.data(),
                        kMean.data(), kMomentT.data(), kvType, layer, kvHeads, headSize,
                        parts.data());
    });
    return parts.data();
  };

  std::vector<int> tileRow0(rows), tileRows(rows, 1);
  for (int r = 0; r < rows; r++) tileRow0[r] = r;
  const size_t qn = (size_t)rows * heads * headSize;
  const size_t partialFloats = (size_t)rows * kvHeads * splits * FA_VECS * (headSize + 2);

  // the three kernels, on copies of q, k, the pool and the scales, under a split of `sp` ranges
  // of `len` positions
  struct Result {
    std::vector<float> out, scales, chans;
    std::vector<unsigned char> pool;
  };
  auto threeKernels = [&](int sp, int len) {
    const size_t pf = (size_t)rows * kvHeads * sp * FA_VECS * (headSize + 2);
    std::vector<float> q1 = q, k1 = k, partial1(pf);
    Result res{std::vector<float>(qn, -7.f), scales, chans, pool};
    float* s1 = scaleCount ? res.scales.data() : nullptr;
    float* c1 = chanCount ? res.chans.data() : nullptr;
    std::vector<float> parts1;
    const float* p1 = searchParts(parts1);
    emu_launch(rows, 128, [&] {
      rope_kv_append(q1.data(), k1.data(), v.data(), cosT.data(), sinT.data(), heads, style,
                     res.pool.data(), s1, c1, kvEnc, kvType, rowSeq.data(), positions.data(),
                     tables.data(), maxBlocks, layer, layers, kvHeads, headSize, blockSize, mean,
                     p1);
    });
    emu_launch3(rows, kvHeads, sp, 32 * FA_WARPS, [&] {
      attention_tiled(q1.data(), res.pool.data(), s1, c1, kvType, res.out.data(), rowSeq.data(),
                      positions.data(), tables.data(), maxBlocks, layer, layers, heads, kvHeads,
                      headSize, blockSize, scale, DT_F32, tileRow0.data(), tileRows.data(), sp,
                      len, partial1.data(), mean, cosT.data(), sinT.data(), style);
    });
    if (sp > 1) {
      emu_launch3(rows, kvHeads, FA_VECS, 64, [&] {
        attention_merge(partial1.data(), res.out.data(), tileRow0.data(), tileRows.data(), heads,
                        kvHeads, headSize, sp, DT_F32);
      });
    }
    return res;
  };
  Result three = threeKernels(splits, splitLen);
  std::vector<float>& out1 = three.out;
  std::vector<float>& scales1 = three.scales;
  std::vector<float>& chans1 = three.chans;
  std::vector<unsigned char>& pool1 = three.pool;

  // attention_decode on the untouched inputs
  std::vector<float> out2(qn, -7.f), partial2(partialFloats), scales2 = scales, chans2 = chans;
  std::vector<unsigned char> pool2 = pool;
  float* c2 = chanCount ? chans2.data() : nullptr;
  std::vector<int> counters((size_t)rows * heads, 0);  // per (row, kv head; or query head)
  float* s2 = scaleCount ? scales2.data() : nullptr;
  std::vector<float> parts2;
  const float* p2 = searchParts(parts2);
  emu_launch3(rows, kvHeads, splits, 32 * FA_WARPS, [&] {
    attention_decode(q.data(), k.data(), v.data(), cosT.data(), sinT.data(), style, pool2.data(),
                     s2, c2, kvEnc, kvType, out2.data(), rowSeq.data(), positions.data(), tables.data(),
                     maxBlocks, layer, layers, heads, kvHeads, headSize, blockSize, scale, DT_F32,
                     tileRow0.data(), splits, splitLen, partial2.data(), counters.data(), mean, p2);
  });
  for (int c : counters) {
    if (c != 0) {
      fprintf(stderr, "harness: a split counter was left at %d\n", c);
      return 3;
    }
  }
  // again with the blocks in the opposite order, so another block of each (row, kv head) is the
  // last to arrive and merges: the same bits
  {
    std::vector<float> out3(qn, -7.f), partial3(partialFloats), scales3 = scales, chans3 = chans;
    std::vector<unsigned char> pool3 = pool;
    float* s3 = scaleCount ? scales3.data() : nullptr;
    float* c3 = chanCount ? chans3.data() : nullptr;
    std::vector<float> parts3;
    const float* p3 = searchParts(parts3);
    emuReverseBlocks = true;
    emu_launch3(rows, kvHeads, splits, 32 * FA_WARPS, [&] {
      attention_decode(q.data(), k.data(), v.data(), cosT.data(), sinT.data(), style,
                       pool3.data(), s3, c3, kvEnc, kvType, out3.data(), rowSeq.data(),
                       positions.data(),
                       tables.data(), maxBlocks, layer, layers, heads, kvHeads, headSize,
                       blockSize, scale, DT_F32, tileRow0.data(), splits, splitLen,
                       partial3.data(), counters.data(), mean, p3);
    });
    emuReverseBlocks = false;
    if (std::memcmp(out3.data(), out2.data(), qn * sizeof(float)) != 0 || pool3 != pool2 ||
        scales3 != scales2 || chans3 != chans2) {
      fprintf(stderr, "harness: blocks in reverse order gave other bits\n");
      return 4;
    }
  }

  // attention_rows on the untouched inputs, and the three kernels under its split
  Result three2, rowsOut, rowsReversed;
  int perHeadRuns = 0;  // attention_rows' runs with a block per query head, all checked
  if (rowsWarps > 0) {
    const int span = rowsWarps * rowsPer * FA_KT;
    int maxPos = 0;
    for (int p : positions) maxPos = std::max(maxPos, p);
    const int blocks = maxPos / span + 1;
    three2 = threeKernels(blocks * rowsWarps, rowsPer * FA_KT);
    auto runRows = [&](bool reverse, bool perHead) {
      Result res{std::vector<float>(qn, -7.f), scales, chans, pool};
      std::vector<float> partial((size_t)rows * kvHeads * blocks * rowsWarps * FA_ROWS * (headSize + 2));
      float* s3 = scaleCount ? res.scales.data() : nullptr;
      float* c3 = chanCount ? res.chans.data() : nullptr;
      const bool kc = (kvEnc & KV_KEY_CHANNELS) != 0;
      emuReverseBlocks = reverse;
      emu_launch3(rows, perHead ? heads : kvHeads, blocks, 32 * rowsWarps, [&] {
        auto* pp = res.pool.data();
#define ROWS_ARGS                                                                                \
  q.data(), k.data(), v.data(), cosT.data(), sinT.data(), style, pp, s3, c3, kvEnc,            \
      res.out.data(),                                                                           \
      rowSeq.data(), positions.data(), tables.data(), maxBlocks, layer, layers, heads, kvHeads, \
      blockSize, scale, DT_F32, rowsPer, partial.data(), counters.data()
        if (perHead && headSize == 32 && kvType == DT_F16) attention_rows_h32_f16_heads(ROWS_ARGS);
        else if (perHead && headSize == 32 && kvType == DT_BF16) attention_rows_h32_bf16_heads(ROWS_ARGS);
        else if (perHead && headSize == 64 && kvType == DT_F16) attention_rows_h64_f16_heads(ROWS_ARGS);
        else if (perHead && headSize == 64 && kvType == DT_BF16) attention_rows_h64_bf16_heads(ROWS_ARGS);
        else if (perHead && headSize == 128 && kvType == DT_F16) attention_rows_h128_f16_heads(ROWS_ARGS);
        else if (perHead && headSize == 128 && kvType == DT_BF16) attention_rows_h128_bf16_heads(ROWS_ARGS);
        else if (perHead && headSize == 32 && kvType == DT_KV_I8) attention_rows_h32_i8_heads(ROWS_ARGS);
        else if (perHead && headSize == 32 && kvType == DT_KV_E4M3) attention_rows_h32_e4m3_heads(ROWS_ARGS);
        else if (perHead && headSize == 64 && kvType == DT_KV_I8) attention_rows_h64_i8_heads(ROWS_ARGS);
        else if (perHead && headSize == 64 && kvType == DT_KV_E4M3) attention_rows_h64_e4m3_heads(ROWS_ARGS);
        else if (perHead && headSize == 128 && kvType == DT_KV_I8) attention_rows_h128_i8_heads(ROWS_ARGS);
        else if (perHead && headSize == 128 && kvType == DT_KV_E4M3) attention_rows_h128_e4m3_heads(ROWS_ARGS);
        else if (perHead) {
          fprintf(stderr, "harness: no attention_rows per query head for %d, %d\n", headSize, kvType);
          exit(2);
        }
        else if (kc && headSize == 32 && kvType == DT_KV_I8) attention_rows_h32_i8_kc(ROWS_ARGS);
        else if (kc && headSize == 32 && kvType == DT_KV_E4M3) attention_rows_h32_e4m3_kc(ROWS_ARGS);
        else if (kc && headSize == 64 && kvType == DT_KV_I8) attention_rows_h64_i8_kc(ROWS_ARGS);
        else if (kc && headSize == 64 && kvType == DT_KV_E4M3) attention_rows_h64_e4m3_kc(ROWS_ARGS);
        else if (kc && headSize == 128 && kvType == DT_KV_I8) attention_rows_h128_i8_kc(ROWS_ARGS);
        else if (kc && headSize == 128 && kvType == DT_KV_E4M3) attention_rows_h128_e4m3_kc(ROWS_ARGS);
        else if (kc) {
          fprintf(stderr, "harness: no attention_rows with keys per channel for %d, %d\n", headSize,
                  kvType);
          exit(2);
        }
        else if (headSize == 32 && kvType == DT_F16) attention_rows_h32_f16(ROWS_ARGS);
        else if (headSize == 32 && kvType == DT_BF16) attention_rows_h32_bf16(ROWS_ARGS);
        else if (headSize == 32 && kvType == DT_KV_I8) attention_rows_h32_i8(ROWS_ARGS);
        else if (headSize == 32 && kvType == DT_KV_E4M3) attention_rows_h32_e4m3(ROWS_ARGS);
        else if (headSize == 64 && kvType == DT_F16) attention_rows_h64_f16(ROWS_ARGS);
        else if (headSize == 64 && kvType == DT_BF16) attention_rows_h64_bf16(ROWS_ARGS);
        else if (headSize == 64 && kvType == DT_KV_I8) attention_rows_h64_i8(ROWS_ARGS);
        else if (headSize == 64 && kvType == DT_KV_E4M3) attention_rows_h64_e4m3(ROWS_ARGS);
        else if (headSize == 128 && kvType == DT_F16) attention_rows_h128_f16(ROWS_ARGS);
        else if (headSize == 128 && kvType == DT_BF16) attention_rows_h128_bf16(ROWS_ARGS);
        else if (headSize == 128 && kvType == DT_KV_I8) attention_rows_h128_i8(ROWS_ARGS);
        else if (headSize == 128 && kvType == DT_KV_E4M3) attention_rows_h128_e4m3(ROWS_ARGS);
        else {
          fprintf(stderr, "harness: no attention_rows for head size %d, kv type %d\n", headSize,
                  kvType);
          exit(2);
        }
#undef ROWS_ARGS
      });
      emuReverseBlocks = false;
      for (int c : counters) {
        if (c != 0) {
          fprintf(stderr, "harness: attention_rows left a counter at %d\n", c);
          exit(3);
        }
      }
      return res;
    };
    auto same = [&](const Result& a, const Result& b) {
      return std::memcmp(a.out.data(), b.out.data(), qn * sizeof(float)) == 0 && a.pool == b.pool &&
             a.scales == b.scales && a.chans == b.chans;
    };
    rowsOut = runRows(false, false);
    rowsReversed = runRows(true, false);
    if (!same(rowsReversed, rowsOut)) {
      fprintf(stderr, "harness: attention_rows' blocks in reverse order gave other bits\n");
      return 4;
    }
    // a block per query head (CudaKernels.rowsPerHeadSuits: not keys per channel, several query
    // heads per kv head): the same bits, in either block order
    if ((kvEnc & KV_KEY_CHANNELS) == 0 && heads > kvHeads) {
      if (!same(runRows(false, true), rowsOut) || !same(runRows(true, true), rowsOut)) {
        fprintf(stderr, "harness: attention_rows with a block per query head gave other bits\n");
        return 4;
      }
      perHeadRuns = 2;
    }
  }

  FILE* o = fopen(argv[2], "wb");
  bool ok = o && fwrite(out1.data(), sizeof(float), qn, o) == qn &&
            fwrite(pool1.data(), 1, pool1.size(), o) == pool1.size() &&
            fwrite(scales1.data(), sizeof(float), scales1.size(), o) == scales1.size() &&
            fwrite(chans1.data(), sizeof(float), chans1.size(), o) == chans1.size() &&
            fwrite(out2.data(), sizeof(float), qn, o) == qn &&
            fwrite(pool2.data(), 1, pool2.size(), o) == pool2.size() &&
            fwrite(scales2.data(), sizeof(float), scales2.size(), o) == scales2.size() &&
            fwrite(chans2.data(), sizeof(float), chans2.size(), o) == chans2.size();
  for (Result* res : {&three2, &rowsOut}) {
    if (rowsWarps == 0) break;
    ok = ok && fwrite(res->out.data(), sizeof(float), qn, o) == qn &&
         fwrite(res->pool.data(), 1, res->pool.size(), o) == res->pool.size() &&
         fwrite(res->scales.data(), sizeof(float), res->scales.size(), o) == res->scales.size() &&
         fwrite(res->chans.data(), sizeof(float), res->chans.size(), o) == res->chans.size();
  }
  if (rowsWarps > 0) ok = ok && fwrite(&perHeadRuns, sizeof(int), 1, o) == 1;
  if (!ok) {
    perror(argv[2]);
    return 2;
  }
  fclose(o);
  return 0;
}
