package io.kvant.engine.format.llama2c;

import io.kvant.engine.format.ModelFormatException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.EnumMap;

/**
 * Opens llama2.c legacy (version 0) checkpoints: seven little-endian int32s ({@code dim,
 * hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len}) followed by float32 arrays in
 * {@link Llama2cTensor} order, with {@code wcls} present only when {@code vocab_size} is negative.
 *
 * <p>The header must be self-consistent (positive sizes, {@code dim} divisible by {@code n_heads},
 * {@code n_heads} by {@code n_kv_heads}, an even head size) and the file size must equal exactly
 * what it implies; a mismatch is reported with both sizes. The newer llama2.c exports (magic
 * "ak42", versions 1 and 2) are recognised and rejected with a message saying so.
 */
public final class Llama2cReader {
  /** "ak42" as the little-endian int32 that starts llama2.c version 1+ exports. */
  static final int EXPORT_MAGIC = 0x616b3432;

  static final int HEADER_BYTES = 7 * Integer.BYTES;

  private static final ValueLayout.OfInt I32 =
      ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  private Llama2cReader() {}

  /**
   * Maps and validates {@code file}.
   *
   * @throws ModelFormatException if it is not a consistent llama2.c version-0 checkpoint
   * @throws IOException if it cannot be read
   */
  public static Llama2cCheckpoint open(Path file) throws IOException {
    Arena arena = Arena.ofShared();
    try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
      long size = channel.size();
      MemorySegment segment = channel.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
      return parse(file, arena, segment);
    } catch (IOException | RuntimeException | Error e) {
      arena.close();
      throw e;
    }
  }

  private static Llama2cCheckpoint parse(Path file, Arena arena, MemorySegment segment)
      throws ModelFormatException {
    long size = segment.byteSize();
    if (size >= 8 && segment.get(I32, 0) == EXPORT_MAGIC) {
      throw new ModelFormatException(
          file,
          "llama2.c export version "
              + segment.get(I32, 4)
              + " (magic \"ak42\") is not supported; only the legacy version-0 checkpoint is");
    }
    if (size < HEADER_BYTES) {
      throw new ModelFormatException(
          file,
          "file is " + size + " bytes, too small for the llama2.c header (" + HEADER_BYTES + ")");
    }
    int[] h = new int[7];
    for (int i = 0; i < h.length; i++) {
      h[i] = segment.get(I32, (long) i * Integer.BYTES);
    }
    Llama2cConfig config = validateHeader(file, h);
    EnumMap<Llama2cTensor, Long> offsets = new EnumMap<>(Llama2cTensor.class);
    long withoutClassifier;
    long withClassifier;
    try {
      long at = HEADER_BYTES;
      for (Llama2cTensor t : Llama2cTensor.values()) {
        if (t == Llama2cTensor.WCLS) {
          break;
        }
        offsets.put(t, at);
        at = Math.addExact(at, bytes(t, config));
      }
      withoutClassifier = at;
      withClassifier = Math.addExact(at, bytes(Llama2cTensor.WCLS, config));
    } catch (ArithmeticException e) {
      throw new ModelFormatException(
          file, "header " + describe(h) + " implies a size that overflows 64 bits");
    }
    long expected = config.sharedClassifier() ? withoutClassifier : withClassifier;
    if (size != expected) {
      throw new ModelFormatException(
          file,
          "file is "
              + size
              + " bytes but header "
              + describe(h)
              + " implies "
              + expected
              + " bytes ("
              + (config.sharedClassifier()
                  ? "shared classifier; " + withClassifier + " with a separate wcls"
                  : "separate wcls; " + withoutClassifier + " with a shared classifier")
              + ")");
    }
    if (!config.sharedClassifier()) {
      offsets.put(Llama2cTensor.WCLS, withoutClassifier);
    }
    return new Llama2cCheckpoint(file, arena, segment, config, offsets);
  }

  private static long bytes(Llama2cTensor t, Llama2cConfig c) {
    long blocks = t.perLayer() ? c.nLayers() : 1;
    return Math.multiplyExact(Math.multiplyExact(t.floatsPerBlock(c), blocks), Float.BYTES);
  }

  private static Llama2cConfig validateHeader(Path file, int[] h) throws ModelFormatException {
    int dim = h[0];
    int hidden = h[1];
    int layers = h[2];
    int heads = h[3];
    int kvHeads = h[4];
    int vocab = h[5];
    int seqLen = h[6];
    String problem = null;
    if (dim <= 0 || hidden <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || seqLen <= 0) {
      problem = "sizes must be positive";
    } else if (vocab == 0 || vocab == Integer.MIN_VALUE) {
      problem = "vocab_size must be non-zero";
    } else if (dim % heads != 0) {
      problem = "dim is not a multiple of n_heads";
    } else if (heads % kvHeads != 0) {
      problem = "n_heads is not a multiple of n_kv_heads";
    } else if ((dim / heads) % 2 != 0) {
      problem = "head size dim/n_heads is odd, RoPE needs it even";
    }
    if (problem != null) {
      throw new ModelFormatException(
          file, "not a llama2.c checkpoint: header " + describe(h) + ": " + problem);
    }
    return new Llama2cConfig(
        dim, hidden, layers, heads, kvHeads, Math.abs(vocab), seqLen, vocab > 0);
  }

  private static String describe(int[] h) {
    return String.format(
        "(dim=%d, hidden_dim=%d, n_layers=%d, n_heads=%d, n_kv_heads=%d, vocab_size=%d,"
            + " seq_len=%d)",
        h[0], h[1], h[2], h[3], h[4], h[5], h[6]);
  }
}
