package io.kvant.engine.kv;

/**
 * A {@link KvStore} over fixed-size blocks of {@link KvCacheType} storage, addressed through the
 * block tables of a {@link KvCacheManager} (the {@code seq} handle is the manager's).
 *
 * <p>Layout of one block, per layer and KV head: {@code blockSize} consecutive head vectors, so the
 * attention loop over one head streams a contiguous run per block; F32 keys are stored transposed
 * in that run (for each dimension, the block's tokens), so a query's scores for a block are vectors
 * over tokens, without a horizontal sum per token. Quantized types keep one F32 scale per (layer,
 * head, token), encoded as {@link KvEncoding} says (per token as it comes, or rotated first). Reads
 * dequantize on the fly in {@link KvKernels}. All memory is allocated at construction.
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
  private final float[][] kf;
  private final float[][] vf;
  private final byte[][] kq;
  private final byte[][] vq;
  private final float[][] ks;
  private final float[][] vs;

  PagedKvStore(KvGeometry g, KvCacheType type, int blockSize, int blocks, BlockTables tables) {
    this(g, type, KvEncoding.PER_TOKEN, blockSize, blocks, tables);
  }

  /**
   * @param encoding how INT8/FP8 head vectors are encoded ({@link KvEncoding}); F32 takes only
   *     {@link KvEncoding#PER_TOKEN} (it stores the floats as they are)
   * @throws IllegalArgumentException for {@link KvCacheType#F16}, {@link KvEncoding#HADAMARD} with
   *     F32 or with a head size that is not a power of two
   */
  PagedKvStore(
      KvGeometry g,
      KvCacheType type,
      KvEncoding encoding,
      int blockSize,
      int blocks,
      BlockTables tables) {
    if (encoding == KvEncoding.HADAMARD) {
      if (type == KvCacheType.F32) {
        throw new IllegalArgumentException(
            "kv encoding hadamard applies to int8 and fp8 KV only, not f32");
      }
      if (Integer.bitCount(g.headSize()) != 1) {
        throw new IllegalArgumentException(
            "kv encoding hadamard needs a power-of-two head size, got " + g.headSize());
      }
    }
    this.encoding = encoding;
    if (type == KvCacheType.F16) {
      throw new IllegalArgumentException(
          "f16 KV storage is implemented by the CUDA backend only; on the CPU use f32, int8 or fp8");
    }
    this.g = g;
    this.type = type;
    this.blockSize = blockSize;
    this.tables = tables;
    long elems = (long) g.layers() * g.kvHeads() * blockSize * g.headSize();
    if (elems > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException("a block of " + elems + " elements is too large");
    }
    int scales = g.layers() * g.kvHeads() * blockSize;
    if (type == KvCacheType.F32) {
      kf = new float[blocks][(int) elems];
      vf = new float[blocks][(int) elems];
      kq = vq = null;
      ks = vs = null;
    } else {
      kf = vf = null;
      kq = new byte[blocks][(int) elems];
      vq = new byte[blocks][(int) elems];
      ks = new float[blocks][scales];
      vs = new float[blocks][scales];
    }
  }

  /** Storage precision. */
  public KvCacheType type() {
    return type;
  }

  /** How INT8/FP8 head vectors are encoded. */
  public KvEncoding encoding() {
    return encoding;
  }

  /** {@code x[off .. off+n)} rotated into a new array when the encoding rotates, else null. */
  private float[] rotated(float[] x, int off, int n) {
    if (encoding != KvEncoding.HADAMARD) {
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

  private int scaleIndex(int layer, int head, int slot) {
    return (layer * g.kvHeads() + head) * blockSize + slot;
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
      switch (type) {
        case F32 -> {
          // Keys transposed: dimension d of slot t at (layer, head)'s base + d*blockSize + t.
          float[] kb = kf[block];
          int kt = scaleIndex(layer, h, 0) * hs + slot;
          for (int d = 0; d < hs; d++) {
            kb[kt + d * blockSize] = k[kOff + src + d];
          }
          System.arraycopy(v, vOff + src, vf[block], e, hs);
        }
        case INT8, FP8_E4M3 -> {
          float[] kr = rotated(k, kOff + src, hs);
          float[] vr = rotated(v, vOff + src, hs);
          float[] kx = kr != null ? kr : k;
          float[] vx = vr != null ? vr : v;
          int ko = kr != null ? 0 : kOff + src;
          int vo = vr != null ? 0 : vOff + src;
          if (type == KvCacheType.INT8) {
            ks[block][si] = KvKernels.quantizeInt8(kx, ko, hs, kq[block], e);
            vs[block][si] = KvKernels.quantizeInt8(vx, vo, hs, vq[block], e);
          } else {
            ks[block][si] = KvKernels.quantizeFp8(kx, ko, hs, kq[block], e);
            vs[block][si] = KvKernels.quantizeFp8(vx, vo, hs, vq[block], e);
          }
        }
        default -> throw new IllegalStateException("unreachable: " + type);
      }
    }
  }

  @Override
  public void keyScores(
      int seq, int layer, int kvHead, float[] q, int qOff, int len, float[] scores) {
    int hs = g.headSize();
    float[] qr = rotated(q, qOff, hs);
    if (qr != null) {
      q = qr;
      qOff = 0;
    }
    for (int start = 0, index = 0; start < len; start += blockSize, index++) {
      int block = tables.blockId(seq, index);
      int n = Math.min(blockSize, len - start);
      int s0 = scaleIndex(layer, kvHead, 0);
      int e0 = s0 * hs;
      switch (type) {
        case F32 -> KvKernels.scoresF32T(q, qOff, kf[block], e0, blockSize, n, hs, scores, start);
        case INT8 -> {
          byte[] kb = kq[block];
          float[] sc = ks[block];
          for (int t = 0; t < n; t++) {
            scores[start + t] = sc[s0 + t] * KvKernels.dotInt8(q, qOff, kb, e0 + t * hs, hs);
          }
        }
        case FP8_E4M3 -> {
          byte[] kb = kq[block];
          float[] sc = ks[block];
          for (int t = 0; t < n; t++) {
            scores[start + t] = sc[s0 + t] * KvKernels.dotFp8(q, qOff, kb, e0 + t * hs, hs);
          }
        }
      }
    }
  }

  @Override
  public void addWeightedValues(
      int seq, int layer, int kvHead, float[] weights, int len, float[] out, int outOff) {
    int hs = g.headSize();
    if (encoding == KvEncoding.HADAMARD) {
      // Sum in the rotated basis, rotate the head's sum back once, then add it to out.
      float[] sum = new float[hs];
      addWeightedValues(seq, layer, kvHead, weights, len, sum, 0, hs);
      KvEncoding.rotate(sum, 0, hs);
      for (int i = 0; i < hs; i++) {
        out[outOff + i] += sum[i];
      }
      return;
    }
    addWeightedValues(seq, layer, kvHead, weights, len, out, outOff, hs);
  }

  private void addWeightedValues(
      int seq, int layer, int kvHead, float[] weights, int len, float[] out, int outOff, int hs) {
    for (int start = 0, index = 0; start < len; start += blockSize, index++) {
      int block = tables.blockId(seq, index);
      int n = Math.min(blockSize, len - start);
      int s0 = scaleIndex(layer, kvHead, 0);
      int e0 = s0 * hs;
      switch (type) {
        case F32 -> KvKernels.weightedSumF32(weights, start, vf[block], e0, hs, n, hs, out, outOff);
        case INT8 -> {
          byte[] vb = vq[block];
          float[] sc = vs[block];
          for (int t = 0; t < n; t++) {
            KvKernels.axpyInt8(weights[start + t] * sc[s0 + t], vb, e0 + t * hs, out, outOff, hs);
          }
        }
        case FP8_E4M3 -> {
          byte[] vb = vq[block];
          float[] sc = vs[block];
          for (int t = 0; t < n; t++) {
            KvKernels.axpyFp8(weights[start + t] * sc[s0 + t], vb, e0 + t * hs, out, outOff, hs);
          }
        }
      }
    }
  }
}
