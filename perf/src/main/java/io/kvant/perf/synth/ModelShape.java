package io.kvant.perf.synth;

import java.util.Locale;
import java.util.Map;

/**
 * The hyper-parameters that fix every tensor shape of a Llama-family model.
 *
 * @param name a label, written as {@code general.name}
 * @param dim embedding width
 * @param layers transformer blocks
 * @param heads query heads ({@code dim} must be a multiple)
 * @param kvHeads key/value heads ({@code heads} must be a multiple)
 * @param hidden feed-forward width
 * @param vocab vocabulary size (at least 259: 3 special and 256 byte tokens)
 * @param contextLength context window written to the file
 * @param ropeTheta RoPE base frequency
 * @param tied whether the output head shares the token embedding (no {@code output.weight})
 */
public record ModelShape(
    String name,
    int dim,
    int layers,
    int heads,
    int kvHeads,
    int hidden,
    int vocab,
    int contextLength,
    float ropeTheta,
    boolean tied) {

  /** The named shapes {@link #named} knows. */
  public static final Map<String, ModelShape> PRESETS =
      Map.of(
          "smollm2-135m",
          new ModelShape("SmolLM2-135M-shape", 576, 30, 9, 3, 1536, 49152, 8192, 100000f, true),
          "llama-3.2-1b",
          new ModelShape("Llama-3.2-1B-shape", 2048, 16, 32, 8, 8192, 128256, 8192, 500000f, true),
          "llama-3-8b",
          new ModelShape("Llama-3-8B-shape", 4096, 32, 32, 8, 14336, 128256, 8192, 500000f, false),
          "tiny",
          new ModelShape("tiny", 64, 2, 4, 2, 128, 320, 256, 10000f, true));

  /**
   * Checks the shape.
   *
   * @throws IllegalArgumentException naming the offending field
   */
  public ModelShape {
    if (dim <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || hidden <= 0) {
      throw new IllegalArgumentException("shape: dims, layers and heads must be positive");
    }
    if (dim % heads != 0 || heads % kvHeads != 0) {
      throw new IllegalArgumentException(
          "shape: dim must be a multiple of heads and heads of kvHeads, got dim="
              + dim
              + " heads="
              + heads
              + " kvHeads="
              + kvHeads);
    }
    if ((dim / heads) % 2 != 0) {
      throw new IllegalArgumentException("shape: head size must be even for RoPE");
    }
    if (vocab < SyntheticVocab.FIRST_FILLER) {
      throw new IllegalArgumentException(
          "shape: vocab must be at least " + SyntheticVocab.FIRST_FILLER + ", got " + vocab);
    }
    if (contextLength <= 0) {
      throw new IllegalArgumentException("shape: contextLength must be positive");
    }
  }

  /**
   * A preset by name (case-insensitive): {@code smollm2-135m}, {@code llama-3.2-1b}, {@code
   * llama-3-8b}, {@code tiny}.
   *
   * @throws IllegalArgumentException for an unknown name, listing the known ones
   */
  public static ModelShape named(String name) {
    ModelShape s = PRESETS.get(name.toLowerCase(Locale.ROOT));
    if (s == null) {
      throw new IllegalArgumentException(
          "--shape: unknown shape '" + name + "', known: " + PRESETS.keySet());
    }
    return s;
  }

  /** Width of one head. */
  public int headSize() {
    return dim / heads;
  }

  /** Width of the key/value projections. */
  public int kvDim() {
    return kvHeads * headSize();
  }

  /** Number of weights (matrices and norms), the tied head counted once. */
  public long parameterCount() {
    long perLayer =
        2L * dim * dim + 2L * kvDim() * dim + 3L * hidden * dim + 2L * dim; // + two norms
    return (long) vocab * dim * (tied ? 1 : 2) + layers * perLayer + dim;
  }
}
