package io.kvant.engine.kv;

import java.util.Arrays;

/**
 * Calibrated maxima of a model's keys and values per (layer, KV head, channel), what {@link
 * KvEncoding#STATIC} and {@link KvEncoding#STATIC_HADAMARD} derive their fixed scales from ({@code
 * s_c = amax_c / M}, {@link KvEncoding.Scaling#STATIC_CHANNEL}). Element {@code (layer, head, c)}
 * is at {@code (layer * kvHeads + head) * headSize + c}. Keys are measured as the cache stores them
 * (after RoPE); {@code rotated} says whether the maxima are of the Walsh-Hadamard-rotated vectors.
 *
 * @param geometry the model's KV shape
 * @param rotated maxima of the rotated head vectors ({@link KvEncoding#rotates()})
 * @param keyAmax {@code max |k_c|} per (layer, head, channel), finite and {@code >= 0}
 * @param valueAmax {@code max |v_c|} likewise
 */
public record KvScales(KvGeometry geometry, boolean rotated, float[] keyAmax, float[] valueAmax) {
  public KvScales {
    int n = geometry.layers() * geometry.kvDim();
    check("key_amax", keyAmax, n);
    check("value_amax", valueAmax, n);
    keyAmax = keyAmax.clone();
    valueAmax = valueAmax.clone();
  }

  private static void check(String field, float[] a, int n) {
    if (a.length != n) {
      throw new IllegalArgumentException(
          field + ": " + a.length + " values, the geometry needs " + n);
    }
    for (int i = 0; i < n; i++) {
      if (!(a[i] >= 0f) || Float.isInfinite(a[i])) {
        throw new IllegalArgumentException(
            field + "[" + i + "]: must be finite and >= 0, got " + a[i]);
      }
    }
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
        && Arrays.equals(valueAmax, s.valueAmax);
  }

  @Override
  public int hashCode() {
    return (geometry.hashCode() * 31 + Arrays.hashCode(keyAmax)) * 31
        + Arrays.hashCode(valueAmax)
        + (rotated ? 1 : 0);
  }

  @Override
  public String toString() {
    return "KvScales[" + geometry + ", rotated=" + rotated + "]";
  }
}
