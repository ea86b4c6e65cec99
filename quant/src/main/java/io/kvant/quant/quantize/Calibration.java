package io.kvant.quant.quantize;

import io.kvant.engine.tokenizer.Tokenizer;
import io.kvant.quant.artifact.Digests;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Token sequences used to calibrate (or evaluate) a quantization, with the sha256 of the text they
 * came from (recorded in the QBOM as the calibration-set hash).
 *
 * @param sequences token ids, each starting with BOS when the tokenizer has one
 * @param sha256 lower-case hex digest of the source text (UTF-8)
 */
public record Calibration(List<int[]> sequences, String sha256) {
  /** No calibration data: methods that need activations cannot run. */
  public static final Calibration NONE = new Calibration(List.of(), "none");

  public Calibration {
    sequences = List.copyOf(sequences);
  }

  public boolean isEmpty() {
    return sequences.isEmpty();
  }

  /** Total tokens. */
  public int tokens() {
    return sequences.stream().mapToInt(s -> s.length).sum();
  }

  /**
   * Tokenizes {@code text}: paragraphs (separated by blank lines) are tokenized with BOS, and
   * consecutive paragraphs are packed into sequences of at most {@code maxLen} tokens (a longer
   * paragraph is cut).
   */
  public static Calibration fromText(String text, Tokenizer tokenizer, int maxLen) {
    List<int[]> out = new ArrayList<>();
    List<Integer> cur = new ArrayList<>();
    for (String para : text.split("\\n\\s*\\n")) {
      String p = para.strip();
      if (p.isEmpty()) {
        continue;
      }
      int[] ids = tokenizer.encode(p, true);
      if (!cur.isEmpty() && cur.size() + ids.length > maxLen) {
        out.add(cur.stream().mapToInt(Integer::intValue).toArray());
        cur.clear();
      }
      for (int id : ids) {
        if (cur.size() == maxLen) {
          out.add(cur.stream().mapToInt(Integer::intValue).toArray());
          cur.clear();
        }
        cur.add(id);
      }
    }
    if (!cur.isEmpty()) {
      out.add(cur.stream().mapToInt(Integer::intValue).toArray());
    }
    return new Calibration(out, Digests.sha256(text.getBytes(StandardCharsets.UTF_8)));
  }

  /** The built-in calibration text (short children's stories written for kvant). */
  public static String builtinCalibrationText() {
    return resource("calibration.txt");
  }

  /**
   * The built-in held-out evaluation text (different stories, never used for calibration), about
   * 2.5k tokens on stories260K's tokenizer.
   */
  public static String builtinHeldOutText() {
    return resource("heldout.txt");
  }

  private static String resource(String name) {
    try (InputStream in = Calibration.class.getResourceAsStream(name)) {
      if (in == null) {
        throw new IllegalStateException("missing resource " + name);
      }
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
