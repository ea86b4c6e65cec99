package io.kvant.engine.kv;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A {@link KvStore} over fixed-size blocks of {@link KvCacheType} storage, addressed through the
 * block tables of a {@link KvCacheManager} (the {@code seq} handle is the manager's).
 *
 * <p>Layout of one block, per layer and KV head: {@code blockSize} consecutive head vectors, so the
 * attention loop over one head streams a contiguous run per block; F32 keys are stored transposed
 * in that run (for each dimension, the block's tokens), so a query's scores for a block are vectors
 * over tokens, without a horizontal sum per token. Quantized types keep one-byte codes in the same
 * place and their scales as {@link KvEncoding} says: per (layer, head, token) in the block, per
 * (layer, head, channel) in the block ({@link KvEncoding.Scaling#BLOCK_CHANNEL}), or fixed per
 * (layer, head, channel) from {@link KvScales}. The centered encodings ({@link
 * KvEncoding#centersKeys()}) store each key minus its calibrated mean rotated to its position and
 * add {@code q} times that back to every score. Reads dequantize on the fly in {@link KvKernels}; a
 * per-channel scale is folded into the query (keys) or applied once to a head's sum (values). All
 * memory is allocated at construction; keys and values (floats or codes) live off the Java heap,
 * one native segment each, freed when the store is unreachable, so the cache's size does not count
 * against {@code -Xmx}: a 256 MiB cache on the heap made the launcher's 512 MiB heap run a full
 * collection every ~80 ms under 16 streams (perf/RESULTS.md). The scales stay on the heap.
 *
 * <p>Threading: the forward pass reads and writes different sequences from several threads; block
 * tables change only between steps (on the engine loop), so reads need no locking. Blocks shared by
 * prefix caching are full and never written again.
 */
public final class PagedKvStore implements KvStore {
  private final KvGeometry g;
  private final KvCacheType type;
  private final KvEncoding encoding;
  private final int blockSize;
  private final BlockTables tables;
  // Block b's elements start at element b * blockElems of kd and vd: floats for F32, else codes.
  private final long blockElems;
  private final MemorySegment kd;
  private final MemorySegment vd;

  /** Per block: key scales per (layer, head, slot), or per (layer, head, channel); else null. */
  private final float[][] ks;

  /** Per block: value scales per (layer, head, slot); null for static values. */
  private final float[][] vs;

  /** Static scales per (layer, head, channel), or null. */
  private final float[] kStatic;

  private final float[] vStatic;

  /** Keys' means before RoPE per (layer, head, channel) when keys are centered, else null. */
  private final float[] kMean;

  /** RoPE's tables when keys are centered, else null. */
  private final KeyRope.Tables keyRope;

  /** The queries' second moments per (layer, head), weighing the keys' scale error; or null. */
  private final float[] kMoment;

  PagedKvStore(KvGeometry g, KvCacheType type, int blockSize, int blocks, BlockTables tables) {
    this(g, type, KvEncoding.PER_TOKEN, null, blockSize, blocks, tables);
  }

  /**
   * @param encoding how INT8/FP8 keys and values are encoded ({@link KvEncoding}); F32 takes only
   *     {@link KvEncoding#PER_TOKEN} (it stores the floats as they are)
   * @param scales the calibrated maxima, for an encoding that {@link KvEncoding#needsScales()};
   *     else null
   * @throws IllegalArgumentException for {@link KvCacheType#F16}, another encoding than {@code
   *     per-token} with F32, a rotating encoding with a head size that is not a power of two, or
   *     scales that are missing, of another geometry or of the other basis, or without the key
   *     moments a centered encoding needs
   */
  PagedKvStore(
      KvGeometry g,
      KvCacheType type,
      KvEncoding encoding,
      KvScales scales,
      int blockSize,
      int blocks,
      BlockTables tables) {
    if (type == KvCacheType.F16) {
      throw new IllegalArgumentException(
          "f16 KV storage is implemented by the CUDA backend only; on the CPU use f32, int8 or fp8");
    }
    checkEncoding(g, type, encoding, scales);
    this.encoding = encoding;
    this.g = g;
    this.type = type;
    this.blockSize = blockSize;
    this.tables = tables;
    long elems = (long) g.layers() * g.kvHeads() * blockSize * g.headSize();
    if (elems > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException("a block of " + elems + " elements is too large");
    }
    int perToken = g.layers() * g.kvHeads() * blockSize;
    int perChannel = g.layers() * g.kvDim();
    this.blockElems = elems;
    long bytes = (long) blocks * elems * (type == KvCacheType.F32 ? Float.BYTES : 1);
    Arena arena = Arena.ofAuto();
    kd = arena.allocate(bytes, 64);
    vd = arena.allocate(bytes, 64);
    boolean centered = type != KvCacheType.F32 && encoding.centersKeys();
    kMean = centered ? scales.keyMean() : null;
    keyRope = centered ? new KeyRope.Tables(scales.keyRope(), g.headSize()) : null;
    kMoment = centered && encoding.weighsKeys() ? scales.queryMoment() : null;
    if (type == KvCacheType.F32) {
      ks = vs = null;
      kStatic = vStatic = null;
    } else {
      float max = KvKernels.codeMax(type);
      ks =
          switch (encoding.keyScaling()) {
            case TOKEN, TOKEN_MSE -> new float[blocks][perToken];
            case BLOCK_CHANNEL -> new float[blocks][perChannel];
            case STATIC_CHANNEL -> null;
          };
      vs =
          encoding.valueScaling() == KvEncoding.Scaling.STATIC_CHANNEL
              ? null
              : new float[blocks][perToken];
      kStatic =
          encoding.keyScaling() == KvEncoding.Scaling.STATIC_CHANNEL ? scales.keyScales(max) : null;
      vStatic =
          encoding.valueScaling() == KvEncoding.Scaling.STATIC_CHANNEL
              ? scales.valueScales(max)
              : null;
    }
  }

  private static void checkEncoding(
      KvGeometry g, KvCacheType type, KvEncoding encoding, KvScales scales) {
    String name = "kv encoding " + encoding.optionName();
    if (encoding != KvEncoding.PER_TOKEN && type == KvCacheType.F32) {
      throw new IllegalArgumentException(name + " applies to int8 and fp8 KV only, not f32");
    }
    if (encoding.rotates() && Integer.bitCount(g.headSize()) != 1) {
      throw new IllegalArgumentException(
          name + " needs a power-of-two head size, got " + g.headSize());
    }
    if (encoding.needsScales() && type != KvCacheType.F32) {
      if (scales == null) {
        throw new IllegalArgumentException(name + " needs calibrated KV scales, none given");
      }
      if (!scales.geometry().equals(g)) {
        throw new IllegalArgumentException(
            name + ": the KV scales are for " + scales.geometry() + ", the model is " + g);
      }
      if (encoding.centersKeys() && !scales.hasKeyMoments()) {
        throw new IllegalArgumentException(
            name
                + " needs calibrated key means (KvScaleRecorder with the model's RoPE), the KV"
                + " scales have maxima only");
      }
      if (encoding.centersKeys() && g.headSize() % 2 != 0) {
        throw new IllegalArgumentException(
            name + " needs an even head size (RoPE pairs), got " + g.headSize());
      }
      if (scales.rotated() != encoding.rotates()) {
        throw new IllegalArgumentException(
            name
                + ": the KV scales were calibrated "
                + (scales.rotated() ? "rotated" : "unrotated")
                + ", the encoding needs them "
                + (encoding.rotates() ? "rotated" : "unrotated"));
      }
    }
  }

  /**
   * Bytes of one block: K and V codes (or floats) of every layer, KV head and slot, plus the scales
   * {@code encoding} keeps: per slot ({@link KvEncoding.Scaling#TOKEN}, {@code TOKEN_MSE}), per
   * channel ({@link KvEncoding.Scaling#BLOCK_CHANNEL}), none (static: the scales are the model's,
   * not the block's).
   */
  static long bytesPerBlock(KvGeometry g, KvCacheType type, KvEncoding encoding, int blockSize) {
    long heads = (long) g.layers() * g.kvHeads();
    if (type == KvCacheType.F32 || type == KvCacheType.F16) {
      return blockSize * g.bytesPerToken(type);
    }
    long codes = 2 * heads * blockSize * g.headSize() * type.elementBytes();
    return codes
        + heads
            * Float.BYTES
            * (scalesPerBlock(encoding.keyScaling(), g, blockSize)
                + scalesPerBlock(encoding.valueScaling(), g, blockSize));
  }

  private static int scalesPerBlock(KvEncoding.Scaling s, KvGeometry g, int blockSize) {
    return switch (s) {
      case TOKEN, TOKEN_MSE -> blockSize;
      case BLOCK_CHANNEL -> g.headSize();
      case STATIC_CHANNEL -> 0;
    };
  }

  /** Storage precision. */
  public KvCacheType type() {
    return type;
  }

  /** How INT8/FP8 head vectors are encoded. */
  public KvEncoding encoding() {
    return encoding;
  }

  /**
   * The key at {@code pos} minus its calibrated mean rotated to {@code pos} ({@code k - R(pos) m}),
   * in a new array.
   */
  private float[] centered(float[] k, int off, int n, int ch, int pos) {
    float[] r = new float[n];
    keyRope.rotate(kMean, ch, pos, false, r, 0);
    for (int c = 0; c < n; c++) {
      r[c] = k[off + c] - r[c];
    }
    return r;
  }

  /** {@code x[off .. off+n)} rotated into a new array when the encoding rotates, else null. */
  private float[] rotated(float[] x, int off, int n) {
    if (!encoding.rotates()) {
      return null;
    }
    float[] y = java.util.Arrays.copyOfRange(x, off, off + n);
    KvEncoding.rotate(y, 0, n);
    return y;
  }

  @Override
  public int kvHeads() {
    return g.kvHeads();
  }

  @Override
  public int headSize() {
    return g.headSize();
  }

  /** First element of {@code block} in {@link #kd} and {@link #vd}. */
  private long base(int block) {
    return block * blockElems;
  }

  private int scaleIndex(int layer, int head, int slot) {
    return (layer * g.kvHeads() + head) * blockSize + slot;
  }

  /** Index of (layer, head)'s channel 0 in per-channel scale arrays. */
  private int channelIndex(int layer, int head) {
    return (layer * g.kvHeads() + head) * g.headSize();
  }

  @Override
  public void write(int seq, int layer, int pos, float[] k, int kOff, float[] v, int vOff) {
    int block = tables.blockId(seq, pos / blockSize);
    int slot = pos % blockSize;
    int hs = g.headSize();
    for (int h = 0; h < g.kvHeads(); h++) {
      int si = scaleIndex(layer, h, slot);
      int e = si * hs;
      int src = h * hs;
      if (type == KvCacheType.F32) {
        // Keys transposed: dimension d of slot t at (layer, head)'s base + d*blockSize + t.
        long kt = base(block) + (long) scaleIndex(layer, h, 0) * hs + slot;
        for (int d = 0; d < hs; d++) {
          kd.setAtIndex(ValueLayout.JAVA_FLOAT, kt + (long) d * blockSize, k[kOff + src + d]);
        }
        MemorySegment.copy(
            v, vOff + src, vd, ValueLayout.JAVA_FLOAT, (base(block) + e) * Float.BYTES, hs);
        continue;
      }
      int ch = channelIndex(layer, h);
      float[] kr =
          kMean != null ? centered(k, kOff + src, hs, ch, pos) : rotated(k, kOff + src, hs);
      float[] vr = rotated(v, vOff + src, hs);
      float[] kx = kr != null ? kr : k;
      float[] vx = vr != null ? vr : v;
      int ko = kr != null ? 0 : kOff + src;
      int vo = vr != null ? 0 : vOff + src;
      long at = base(block) + e;
      switch (encoding.keyScaling()) {
        case TOKEN -> ks[block][si] = KvKernels.quantize(type, kx, ko, hs, kd, at);
        case TOKEN_MSE ->
            ks[block][si] =
                kMoment != null
                    ? MseScale.quantizeWeighted(type, kx, ko, hs, kd, at, kMoment, ch * hs)
                    : MseScale.quantize(type, kx, ko, hs, kd, at);
        case BLOCK_CHANNEL ->
            ChannelCodes.appendBlockChannel(
                type,
                kx,
                ko,
                hs,
                ks[block],
                ch,
                kd,
                base(block) + (long) scaleIndex(layer, h, 0) * hs,
                slot);
        case STATIC_CHANNEL -> ChannelCodes.encodeStatic(type, kx, ko, hs, kStatic, ch, kd, at);
      }
      if (encoding.valueScaling() == KvEncoding.Scaling.TOKEN) {
        vs[block][si] = KvKernels.quantize(type, vx, vo, hs, vd, at);
      } else if (encoding.valueScaling() == KvEncoding.Scaling.TOKEN_MSE) {
        vs[block][si] = MseScale.quantize(type, vx, vo, hs, vd, at);
      } else {
        ChannelCodes.encodeStatic(type, vx, vo, hs, vStatic, ch, vd, at);
      }
    }
  }

  @Override
  public void keyScores(
      int seq, int layer, int kvHead, float[] q, int qOff, int len, float[] scores) {
    keyScoresStored(seq, layer, kvHead, q, qOff, len, scores);
    if (kMean != null) {
      // The stored keys are k_t - R(t) m: add q . R(t) m back to every score.
      keyRope.addOffsetScores(q, qOff, kMean, channelIndex(layer, kvHead), len, scores);
    }
  }

  /** {@link #keyScores} against the keys as stored (centered ones without their offset). */
  private void keyScoresStored(
      int seq, int layer, int kvHead, float[] q, int qOff, int len, float[] scores) {
    int hs = g.headSize();
    float[] qr = rotated(q, qOff, hs);
    if (qr != null) {
      q = qr;
      qOff = 0;
    }
    int ch = channelIndex(layer, kvHead);
    float[] qs = null;
    boolean perToken =
        encoding.keyScaling() == KvEncoding.Scaling.TOKEN
            || encoding.keyScaling() == KvEncoding.Scaling.TOKEN_MSE;
    if (type != KvCacheType.F32 && !perToken) {
      // Per-channel scales fold into the query: q . (s * code) = (q * s) . code.
      qs = new float[hs];
      if (kStatic != null) {
        for (int c = 0; c < hs; c++) {
          qs[c] = q[qOff + c] * kStatic[ch + c];
        }
      }
    }
    for (int start = 0, index = 0; start < len; start += blockSize, index++) {
      int block = tables.blockId(seq, index);
      int n = Math.min(blockSize, len - start);
      int s0 = scaleIndex(layer, kvHead, 0);
      long e0 = base(block) + (long) s0 * hs;
      if (type == KvCacheType.F32) {
        int next = start + blockSize;
        if (blockSize == KvKernels.LANES && start + 3 * blockSize < len) {
          // Four blocks per call (KvKernels#scoresF32T4); same scores.
          long e1 = base(tables.blockId(seq, index + 1)) + (long) s0 * hs;
          long e2 = base(tables.blockId(seq, index + 2)) + (long) s0 * hs;
          long e3 = base(tables.blockId(seq, index + 3)) + (long) s0 * hs;
          int n3 = Math.min(blockSize, len - start - 3 * blockSize);
          KvKernels.scoresF32T4(q, qOff, kd, e0, e1, e2, e3, blockSize, n3, hs, scores, start);
          start += 3 * blockSize;
          index += 3;
          continue;
        }
        if (blockSize == 4 * KvKernels.LANES && n > 3 * KvKernels.LANES) {
          // A block of four vectors of tokens: the four in one pass (KvKernels#scoresF32T4).
          int l = KvKernels.LANES;
          KvKernels.scoresF32T4(
              q,
              qOff,
              kd,
              e0,
              e0 + l,
              e0 + 2 * l,
              e0 + 3 * l,
              blockSize,
              n - 3 * l,
              hs,
              scores,
              start);
          continue;
        }
        if (next < len) {
          // Two blocks per call: independent FMA chains (KvKernels#scoresF32T2); same scores.
          int n2 = Math.min(blockSize, len - next);
          long e2 = base(tables.blockId(seq, index + 1)) + (long) s0 * hs;
          KvKernels.scoresF32T2(q, qOff, kd, e0, e2, blockSize, n, n2, hs, scores, start, next);
          start = next;
          index++;
        } else {
          KvKernels.scoresF32T(q, qOff, kd, e0, blockSize, n, hs, scores, start);
        }
        continue;
      }
      MemorySegment kb = kd;
      switch (encoding.keyScaling()) {
        case TOKEN, TOKEN_MSE -> {
          float[] sc = ks[block];
          KvKernels.dots(type, q, qOff, kb, e0, n, hs, scores, start);
          for (int t = 0; t < n; t++) {
            scores[start + t] = sc[s0 + t] * scores[start + t];
          }
        }
        case BLOCK_CHANNEL -> {
          float[] sc = ks[block];
          for (int c = 0; c < hs; c++) {
            qs[c] = q[qOff + c] * sc[ch + c];
          }
          KvKernels.dots(type, qs, 0, kb, e0, n, hs, scores, start);
        }
        case STATIC_CHANNEL -> KvKernels.dots(type, qs, 0, kb, e0, n, hs, scores, start);
      }
    }
  }

  @Override
  public void addWeightedValues(
      int seq, int layer, int kvHead, float[] weights, int len, float[] out, int outOff) {
    int hs = g.headSize();
    if (type == KvCacheType.F32 || (!encoding.rotates() && vStatic == null)) {
      addWeightedValues(seq, layer, kvHead, weights, len, out, outOff, hs);
      return;
    }
    // Sum the codes (times per-token scales, if any) into a head-sized buffer; then per-channel
    // scales once, the rotation back once, and add the result to out.
    float[] sum = new float[hs];
    addWeightedValues(seq, layer, kvHead, weights, len, sum, 0, hs);
    if (vStatic != null) {
      int ch = channelIndex(layer, kvHead);
      for (int c = 0; c < hs; c++) {
        sum[c] *= vStatic[ch + c];
      }
    }
    if (encoding.rotates()) {
      KvEncoding.rotate(sum, 0, hs);
    }
    for (int i = 0; i < hs; i++) {
      out[outOff + i] += sum[i];
    }
  }

  private void addWeightedValues(
      int seq, int layer, int kvHead, float[] weights, int len, float[] out, int outOff, int hs) {
    for (int start = 0, index = 0; start < len; start += blockSize, index++) {
      int block = tables.blockId(seq, index);
      int n = Math.min(blockSize, len - start);
      int s0 = scaleIndex(layer, kvHead, 0);
      long e0 = base(block) + (long) s0 * hs;
      if (type == KvCacheType.F32) {
        KvKernels.weightedSumF32(weights, start, vd, e0, hs, n, hs, out, outOff);
        continue;
      }
      float[] sc = vs != null ? vs[block] : null;
      KvKernels.weightedSumCodes(type, weights, start, sc, s0, vd, e0, n, hs, out, outOff);
    }
  }
}
