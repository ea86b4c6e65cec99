package io.kvant.engine.format.llama2c;

import java.util.Optional;

/**
 * The float32 arrays of a llama2.c legacy checkpoint, in file order, with their llama2.c names.
 *
 * <p>Per-layer tensors ({@link #perLayer()}) are stored as {@code nLayers} consecutive equal
 * blocks. Matrices are row-major {@code [out][in]}, e.g. {@code wq} is {@code [dim][dim]} and
 * {@code w2} is {@code [dim][hiddenDim]}.
 */
public enum Llama2cTensor {
  TOKEN_EMBEDDING("token_embedding", false),
  RMS_ATT("rms_att", true),
  WQ("wq", true),
  WK("wk", true),
  WV("wv", true),
  WO("wo", true),
  RMS_FFN("rms_ffn", true),
  W1("w1", true),
  W2("w2", true),
  W3("w3", true),
  RMS_FINAL("rms_final", false),
  FREQ_CIS_REAL("freq_cis_real", false),
  FREQ_CIS_IMAG("freq_cis_imag", false),
  /** Present in the file only without a shared classifier; otherwise it aliases the embedding. */
  WCLS("wcls", false);

  private final String fileName;
  private final boolean perLayer;

  Llama2cTensor(String fileName, boolean perLayer) {
    this.fileName = fileName;
    this.perLayer = perLayer;
  }

  /** The name llama2.c uses, e.g. {@code "wq"}. */
  public String fileName() {
    return fileName;
  }

  /** Whether the array holds one block per layer. */
  public boolean perLayer() {
    return perLayer;
  }

  /**
   * Floats in one layer's block (or in the whole array if not per-layer).
   *
   * @throws ArithmeticException if the count overflows a long
   */
  public long floatsPerBlock(Llama2cConfig c) {
    long dim = c.dim();
    long hidden = c.hiddenDim();
    long kvDim = c.kvDim();
    return switch (this) {
      case TOKEN_EMBEDDING, WCLS -> Math.multiplyExact((long) c.vocabSize(), dim);
      case RMS_ATT, RMS_FFN, RMS_FINAL -> dim;
      case WQ, WO -> Math.multiplyExact(dim, dim);
      case WK, WV -> Math.multiplyExact(kvDim, dim);
      case W1, W2, W3 -> Math.multiplyExact(hidden, dim);
      case FREQ_CIS_REAL, FREQ_CIS_IMAG -> Math.multiplyExact((long) c.seqLen(), c.headSize() / 2);
    };
  }

  /** The tensor llama2.c calls {@code name}, or empty. */
  public static Optional<Llama2cTensor> byFileName(String name) {
    for (Llama2cTensor t : values()) {
      if (t.fileName.equals(name)) {
        return Optional.of(t);
      }
    }
    return Optional.empty();
  }
}
