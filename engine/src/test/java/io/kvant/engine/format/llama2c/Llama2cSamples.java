package io.kvant.engine.format.llama2c;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** Synthetic llama2.c checkpoints whose float at index i (after the header) equals i. */
final class Llama2cSamples {
  private Llama2cSamples() {}

  /** dim 8, hidden 12, 2 layers, 2 heads, 1 kv head, vocab 10 (negative: separate wcls), seq 4. */
  static byte[] small(boolean separateClassifier) {
    int dim = 8;
    int hidden = 12;
    int layers = 2;
    int vocab = 10;
    int kvDim = 4;
    int seq = 4;
    int headSize = 4;
    long floats =
        (long) vocab * dim
            + layers * (2L * dim + 2L * dim * dim + 2L * kvDim * dim + 3L * hidden * dim)
            + dim
            + 2L * seq * headSize / 2
            + (separateClassifier ? (long) vocab * dim : 0);
    ByteBuffer b = ByteBuffer.allocate((int) (28 + 4 * floats)).order(ByteOrder.LITTLE_ENDIAN);
    b.putInt(dim).putInt(hidden).putInt(layers).putInt(2).putInt(1);
    b.putInt(separateClassifier ? -vocab : vocab).putInt(seq);
    for (int i = 0; i < floats; i++) {
      b.putFloat(i);
    }
    return b.array();
  }
}
