package io.kvant.engine.format;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Objects;

/**
 * A model file is malformed, truncated, of an unsupported version, or does not hold what the caller
 * asked for (a missing metadata key, a value of the wrong type, an unknown tensor name).
 *
 * <p>Contract: the message always starts with the file's name followed by {@code ": "} and a
 * description of the problem, for example {@code "stories.gguf: tensor 'blk.0.attn_q.weight' data
 * [offset 1234, 4096 bytes] extends past end of file (2000 bytes)"}. The parsers in this package
 * throw only this exception (or plain {@link IOException} for I/O failures) for any content of the
 * file, however hostile.
 */
public final class ModelFormatException extends IOException {
  private static final long serialVersionUID = 1L;

  private final transient Path file;

  /**
   * @param file the file being read; its name (not its full path) starts the message
   * @param problem what is wrong, phrased to follow the file name
   */
  public ModelFormatException(Path file, String problem) {
    super(describe(file, problem));
    this.file = file;
  }

  /** Same as {@link #ModelFormatException(Path, String)} with an underlying cause. */
  public ModelFormatException(Path file, String problem, Throwable cause) {
    super(describe(file, problem), cause);
    this.file = file;
  }

  /** The file the problem was found in. */
  public Path file() {
    return file;
  }

  private static String describe(Path file, String problem) {
    Objects.requireNonNull(file, "file");
    Path name = file.getFileName();
    return (name == null ? file.toString() : name.toString()) + ": " + problem;
  }
}
