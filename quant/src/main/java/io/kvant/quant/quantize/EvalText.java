package io.kvant.quant.quantize;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Locale;

/**
 * The built-in evaluation texts, and which one matches a model. Quantization is measured on text
 * the model was trained to predict; on foreign text the reference's predictions are mostly near
 * ties and agreement says little.
 */
public enum EvalText {
  /**
   * The first 6 of the 24 held-out chapters of kvant-kjv-7m's King James Version split (chapter
   * index {@code % 50 == 10}, never trained on nor used to pick the checkpoint; tools/train/
   * rebuilds them), about 25 KB.
   */
  KJV_HELDOUT("kjv-heldout.txt"),
  /**
   * Short children's stories written for kvant in TinyStories' style and vocabulary (never used for
   * calibration), about 7 KB. TinyStories' own validation text cannot be fetched here (no dataset
   * hub), so the stories models are measured on these.
   */
  STORIES_HELDOUT("heldout.txt");

  private final String resource;

  EvalText(String resource) {
    this.resource = resource;
  }

  /** A short label for reports, e.g. {@code kjv-heldout}. */
  public String label() {
    return name().toLowerCase(Locale.ROOT).replace('_', '-');
  }

  /** The text. */
  public String text() {
    try (InputStream in = EvalText.class.getResourceAsStream(resource)) {
      if (in == null) {
        throw new IllegalStateException("missing resource " + resource);
      }
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * The text that matches a model, from its name or description (a GGUF's {@code general.name} and
   * {@code general.description}, else the file or folder name): the KJV held-out text for models
   * trained on the King James Version, the stories text otherwise.
   */
  public static EvalText forModel(String nameAndDescription) {
    String s = nameAndDescription.toLowerCase(Locale.ROOT);
    return s.contains("kjv") || s.contains("king james") ? KJV_HELDOUT : STORIES_HELDOUT;
  }
}
