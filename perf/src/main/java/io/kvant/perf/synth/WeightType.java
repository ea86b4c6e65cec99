package io.kvant.perf.synth;

import io.kvant.engine.format.gguf.GgmlType;
import java.util.Locale;

/**
 * Storage type of a synthetic model's weight matrices (norms are always F32), with the GGUF {@code
 * general.file_type} code llama.cpp uses for a file that is "mostly" that type.
 */
public enum WeightType {
  F32(GgmlType.F32, 0),
  F16(GgmlType.F16, 1),
  Q4_0(GgmlType.Q4_0, 2),
  Q8_0(GgmlType.Q8_0, 7);

  private final GgmlType ggml;
  private final int fileType;

  WeightType(GgmlType ggml, int fileType) {
    this.ggml = ggml;
    this.fileType = fileType;
  }

  /** The ggml tensor type. */
  public GgmlType ggml() {
    return ggml;
  }

  /** llama.cpp's {@code llama_ftype} code for {@code general.file_type}. */
  public int fileType() {
    return fileType;
  }

  /**
   * Parses {@code f32}, {@code f16}, {@code q8_0}, {@code q4_0} (any case).
   *
   * @throws IllegalArgumentException listing the accepted names
   */
  public static WeightType parse(String s) {
    try {
      return valueOf(s.toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(
          "--weights: unknown type '" + s + "', use F32, F16, Q8_0 or Q4_0");
    }
  }
}
