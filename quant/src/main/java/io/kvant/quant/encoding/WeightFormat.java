package io.kvant.quant.encoding;

import java.util.Locale;

/** Storage chosen for one weight tensor by a recipe (or by AIMET encodings). */
public enum WeightFormat {
  /** Keep the source tensor as it is (full precision: F32, F16 or BF16). */
  FULL("f32", 32),
  /** INT8 per-channel symmetric ({@link io.kvant.engine.tensor.DType#I8}). */
  INT8("int8", 8),
  /** INT4 group-wise ({@link io.kvant.engine.tensor.DType#I4}). */
  INT4("int4", 4),
  /** FP8 E4M3 with per-channel or per-tensor scale. */
  FP8_E4M3("fp8_e4m3", 8),
  /** FP8 E5M2 with per-channel or per-tensor scale. */
  FP8_E5M2("fp8_e5m2", 8),
  /** ggml Q4_0 (32-value blocks, fp16 scale), for comparison with llama.cpp. */
  Q4_0("q4_0", 4),
  /** ggml Q8_0 (32-value blocks, fp16 scale). */
  Q8_0("q8_0", 8);

  private final String jsonName;
  private final int bits;

  WeightFormat(String jsonName, int bits) {
    this.jsonName = jsonName;
    this.bits = bits;
  }

  /** The name used in recipe files, encodings and the QBOM. */
  public String jsonName() {
    return jsonName;
  }

  /** Bits per element code. */
  public int bits() {
    return bits;
  }

  /** Parses a recipe name: {@code f32|full|int8|int4|fp8|fp8_e4m3|fp8_e5m2|q4_0|q8_0}. */
  public static WeightFormat parse(String s) {
    String n = s.toLowerCase(Locale.ROOT).strip();
    if (n.equals("full") || n.equals("f16") || n.equals("bf16")) {
      return FULL;
    }
    if (n.equals("fp8")) {
      return FP8_E4M3;
    }
    for (WeightFormat f : values()) {
      if (f.jsonName.equals(n)) {
        return f;
      }
    }
    throw new IllegalArgumentException(
        "unknown weight type '" + s + "' (f32, int8, int4, fp8, fp8_e4m3, fp8_e5m2, q4_0, q8_0)");
  }
}
