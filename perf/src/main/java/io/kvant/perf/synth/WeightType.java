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
  Q8_0(GgmlType.Q8_0, 7),
  Q5_0(GgmlType.Q5_0, 8),
  Q5_1(GgmlType.Q5_1, 9),
  Q2_K(GgmlType.Q2_K, 10),
  Q3_K(GgmlType.Q3_K, 12),
  Q4_K(GgmlType.Q4_K, 15),
  Q5_K(GgmlType.Q5_K, 17),
  Q6_K(GgmlType.Q6_K, 18);

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
   * Parses a type name such as {@code f16}, {@code q8_0} or {@code q4_k} (any case).
   *
   * @throws IllegalArgumentException listing the accepted names
   */
  public static WeightType parse(String s) {
    try {
      return valueOf(s.toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(
          "--weights: unknown type '"
              + s
              + "', use F32, F16, Q8_0, Q4_0, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K or Q6_K");
    }
  }
}
