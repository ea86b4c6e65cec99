package io.kvant.engine.kv;

import io.kvant.engine.model.RopeStyle;

/**
 * The rotary position embedding the forward pass applies to keys (its {@code RopeTable}: the same
 * angles, computed in double and rounded once to F32), as the KV cache needs it to center keys in
 * the frame before RoPE ({@link KvEncoding#CENTERED_MSE}): {@code R(t) m} is the constant {@code m}
 * rotated as a key at position {@code t} is. The cosine and sine tables grow on demand (to the next
 * power of two above the largest position asked for), so a store needs no context length.
 *
 * @param theta base of the rotary frequencies ({@code LlamaConfig.ropeTheta})
 * @param style how dimensions pair up
 */
public record KeyRope(double theta, RopeStyle style) {
  public KeyRope {
    if (!(theta > 0) || Double.isInfinite(theta)) {
      throw new IllegalArgumentException("rope theta must be positive and finite, got " + theta);
    }
    if (style == null) {
      throw new IllegalArgumentException("rope style: missing");
    }
  }

  /** Tables {@code [position][pair]} for one head size, grown on demand; thread-safe. */
  static final class Tables {
    private final KeyRope rope;
    private final int half;
    private volatile float[][] cosSin = {new float[0], new float[0]};

    Tables(KeyRope rope, int headSize) {
      if (headSize % 2 != 0) {
        throw new IllegalArgumentException("RoPE needs an even head size, got " + headSize);
      }
      this.rope = rope;
      this.half = headSize / 2;
    }

    /** {@code {cos, sin}}, each {@code [position][pair]}, covering position {@code pos}. */
    float[][] upTo(int pos) {
      float[][] t = cosSin;
      if (t[0].length > (long) pos * half + half - 1) {
        return t;
      }
      synchronized (this) {
        t = cosSin;
        if (t[0].length > (long) pos * half + half - 1) {
          return t;
        }
        int positions = Integer.highestOneBit(Math.max(pos, 1)) << 1;
        float[] cos = new float[positions * half];
        float[] sin = new float[positions * half];
        for (int i = 0; i < half; i++) {
          double freq = Math.pow(rope.theta, -2.0 * i / (2 * half));
          for (int p = 0; p < positions; p++) {
            double angle = p * freq;
            cos[p * half + i] = (float) Math.cos(angle);
            sin[p * half + i] = (float) Math.sin(angle);
          }
        }
        cosSin = t = new float[][] {cos, sin};
        return t;
      }
    }

    /** Index of dimension {@code a} (first of pair {@code i}) and {@code b} (its partner). */
    private int a(int i) {
      return rope.style == RopeStyle.ADJACENT_PAIRS ? 2 * i : i;
    }

    private int b(int i) {
      return rope.style == RopeStyle.ADJACENT_PAIRS ? 2 * i + 1 : i + half;
    }

    /**
     * {@code out[oOff ..] = R(pos) x[xOff ..]}, or {@code R(-pos) x} when {@code inverse}: one head
     * vector.
     */
    void rotate(float[] x, int xOff, int pos, boolean inverse, float[] out, int oOff) {
      float[][] t = upTo(pos);
      int base = pos * half;
      for (int i = 0; i < half; i++) {
        float c = t[0][base + i];
        float s = inverse ? -t[1][base + i] : t[1][base + i];
        float xa = x[xOff + a(i)];
        float xb = x[xOff + b(i)];
        out[oOff + a(i)] = xa * c - xb * s;
        out[oOff + b(i)] = xa * s + xb * c;
      }
    }

    /**
     * {@code scores[t] += q . R(t) m} for {@code t < len}: per pair {@code i}, {@code q . R(t) m}
     * is {@code cos(t w_i) A_i + sin(t w_i) B_i} with {@code A_i = q_a m_a + q_b m_b} and {@code
     * B_i = q_b m_a - q_a m_b}, so a position costs one dot product over the tables.
     */
    void addOffsetScores(float[] q, int qOff, float[] m, int mOff, int len, float[] scores) {
      float[] aa = new float[half];
      float[] bb = new float[half];
      for (int i = 0; i < half; i++) {
        float qa = q[qOff + a(i)];
        float qb = q[qOff + b(i)];
        float ma = m[mOff + a(i)];
        float mb = m[mOff + b(i)];
        aa[i] = qa * ma + qb * mb;
        bb[i] = qb * ma - qa * mb;
      }
      float[][] t = upTo(Math.max(len - 1, 0));
      float[] cos = t[0];
      float[] sin = t[1];
      for (int p = 0, base = 0; p < len; p++, base += half) {
        float sum = 0f;
        for (int i = 0; i < half; i++) {
          sum += aa[i] * cos[base + i] + bb[i] * sin[base + i];
        }
        scores[p] += sum;
      }
    }
  }
}
