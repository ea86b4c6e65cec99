package io.kvant.engine.model;

/** How rotary position embedding pairs up the dimensions of a head. */
public enum RopeStyle {
  /**
   * Pairs {@code (x[2i], x[2i+1])}: llama2.c, and llama.cpp's {@code llama} architecture (its HF
   * converter permutes Q and K rows so the checkpoint fits this convention).
   */
  ADJACENT_PAIRS,
  /**
   * Pairs {@code (x[i], x[i + headSize/2])}: Hugging Face Llama/Qwen checkpoints as published (the
   * "rotate_half" or NeoX convention).
   */
  HALF_SPLIT
}
