package io.kvant.engine.kv;

import java.util.Arrays;
import java.util.Objects;

/**
 * Calibrated statistics of a model's keys and values per (layer, KV head, channel), from a pass of
 * the full-precision model over calibration text ({@link KvScaleRecorder}): the maxima {@link
 * KvEncoding#STATIC} and {@link KvEncoding#STATIC_HADAMARD} derive their fixed scales from ({@code
 * s_c = amax_c / M}, {@link KvEncoding.Scaling#STATIC_CHANNEL}), and the key moments the centered
 * encodings use ({@link KvEncoding#CENTERED_MSE}, {@link KvEncoding#CENTERED_QMSE}). Element {@code
 * (layer, head, c)} is at {@code (layer * kvHeads + head) * headSize + c}; element {@code (layer,
 * head, i, j)} of {@code queryMoment} at {@code ((layer * kvHeads + head) * headSize + i) *
 * headSize + j}. Keys' maxima are measured as the cache stores them (after RoPE); {@code rotated}
 * says whether the maxima are of the Walsh-Hadamard-rotated vectors.
 *
 * @param geometry the model's KV shape
 * @param rotated maxima of the rotated head vectors ({@link KvEncoding#rotates()})
 * @param keyAmax {@code max |k_c|} per (layer, head, channel), finite and {@code >= 0}
 * @param valueAmax {@code max |v_c|} likewise
 * @param keyRope the RoPE the forward pass rotated the keys by, the frame of {@code keyMean}; null
 *     when the key moments were not measured (then so are {@code keyMean} and {@code queryMoment})
 * @param keyMean the mean of {@code R(-t) k_t} per (layer, head, channel): keys in the frame before
 *     RoPE; finite
 * @param queryMoment {@code E[q_i q_j]} over the queries (after RoPE) that read each (layer, KV
 *     head), a {@code headSize x headSize} matrix per (layer, head); finite, its diagonal {@code >=
 *     0}
 */
public record KvScales(
    KvGeometry geometry,
    boolean rotated,
    float[] keyAmax,
    float[] valueAmax,
    KeyRope keyRope,
    float[] keyMean,
    float[] queryMoment) {
  public KvScales {
    int n = geometry.layers() * geometry.kvDim();
    check("key_amax", keyAmax, n, true);
    check("value_amax", valueAmax, n, true);
    keyAmax = keyAmax.clone();
    valueAmax = valueAmax.clone();
    if (keyRope == null) {
      if (keyMean != null || queryMoment != null) {
        throw new IllegalArgumentException(
            "key_mean and query_moment need key_rope, the frame the means are in");
      }
    } else {
      if (rotated) {
        throw new IllegalArgumentException(
            "key moments are of unrotated keys; the maxima are of rotated ones");
      }
      check("key_mean", keyMean, n, false);
      check("query_moment", queryMoment, n * geometry.headSize(), false);
      int hs = geometry.headSize();
      for (int h = 0; h < geometry.layers() * geometry.kvHeads(); h++) {
        for (int i = 0; i < hs; i++) {
          int at = (h * hs + i) * hs + i;
          if (queryMoment[at] < 0f) {
            throw new IllegalArgumentException(
                "query_moment["
                    + at
                    + "]: a diagonal element must be >= 0, got "
                    + queryMoment[at]);
          }
        }
      }
      keyMean = keyMean.clone();
      queryMoment = queryMoment.clone();
    }
  }

  /** Maxima only, no key moments (what the static encodings need). */
  public KvScales(KvGeometry geometry, boolean rotated, float[] keyAmax, float[] valueAmax) {
    this(geometry, rotated, keyAmax, valueAmax, null, null, null);
  }

  private static void check(String field, float[] a, int n, boolean nonNegative) {
    if (a == null) {
      throw new IllegalArgumentException(field + ": missing");
    }
    if (a.length != n) {
      throw new IllegalArgumentException(
          field + ": " + a.length + " values, the geometry needs " + n);
    }
    for (int i = 0; i < n; i++) {
      if (!Float.isFinite(a[i]) || (nonNegative && a[i] < 0f)) {
        throw new IllegalArgumentException(
            field
                + "["
                + i
                + "]: must be finite"
                + (nonNegative ? " and >= 0" : "")
                + ", got "
                + a[i]);
      }
    }
  }

  /** Whether the key moments were measured ({@link #keyMean()}, {@link #queryMoment()}). */
  public boolean hasKeyMoments() {
    return keyRope != null;
  }

  /** The maxima of keys, a copy. */
  @Override
  public float[] keyAmax() {
    return keyAmax.clone();
  }

  /** The maxima of values, a copy. */
  @Override
  public float[] valueAmax() {
    return valueAmax.clone();
  }

  /** The keys' means before RoPE, a copy; null without key moments. */
  @Override
  public float[] keyMean() {
    return keyMean == null ? null : keyMean.clone();
  }

  /** The queries' second moments, a copy; null without key moments. */
  @Override
  public float[] queryMoment() {
    return queryMoment == null ? null : queryMoment.clone();
  }

  /** {@code amax / max} element by element: the scales for a code range of {@code ±max}. */
  static float[] scales(float[] amax, float max) {
    float[] s = new float[amax.length];
    for (int i = 0; i < s.length; i++) {
      s[i] = amax[i] / max;
    }
    return s;
  }

  float[] keyScales(float max) {
    return scales(keyAmax, max);
  }

  float[] valueScales(float max) {
    return scales(valueAmax, max);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof KvScales s
        && geometry.equals(s.geometry)
        && rotated == s.rotated
        && Arrays.equals(keyAmax, s.keyAmax)
        && Arrays.equals(valueAmax, s.valueAmax)
        && Objects.equals(keyRope, s.keyRope)
        && Arrays.equals(keyMean, s.keyMean)
        && Arrays.equals(queryMoment, s.queryMoment);
  }

  @Override
  public int hashCode() {
    return Objects.hash(
        geometry,
        rotated,
        Arrays.hashCode(keyAmax),
        Arrays.hashCode(valueAmax),
        keyRope,
        Arrays.hashCode(keyMean),
        Arrays.hashCode(queryMoment));
  }

  @Override
  public String toString() {
    return "KvScales["
        + geometry
        + ", rotated="
        + rotated
        + (keyRope == null ? "" : ", key moments before " + keyRope)
        + "]";
  }
}
