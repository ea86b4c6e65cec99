package io.kvant.engine.tokenizer;

/**
 * Turns text into token ids and token ids back into text.
 *
 * <p>Contract shared by all implementations:
 *
 * <ul>
 *   <li>Ids are in {@code [0, vocabSize())}; methods taking an id throw {@link
 *       IndexOutOfBoundsException} for any other value.
 *   <li>{@link #encode(String)} never adds BOS or EOS. {@link #encode(String, boolean)} prepends
 *       {@link #bos()} when asked and the tokenizer has one (it adds nothing when {@code bos() ==
 *       -1}).
 *   <li>{@link #decode(int[])} decodes a whole sequence from its start: control tokens (BOS, EOS
 *       and the like) produce no text, and for SentencePiece-style tokenizers the "dummy prefix"
 *       space that encoding put in front of the text is removed again, so {@code decode(encode(s,
 *       addBos)) } equals {@code s} for every text the vocabulary can represent. Invalid UTF-8
 *       produced by byte tokens decodes to U+FFFD.
 *   <li>{@code decode(ids)} always equals the concatenation of {@link IncrementalDecoder#append}
 *       over the same ids on {@link #newDecoder()}, followed by {@link IncrementalDecoder#flush}.
 *   <li>Implementations are immutable and safe to share between threads; decoders are not.
 * </ul>
 */
public interface Tokenizer {

  /** Encodes {@code text} without BOS. The empty string encodes to no tokens. */
  default int[] encode(String text) {
    return encode(text, false);
  }

  /** Encodes {@code text}, prepending {@link #bos()} when {@code addBos} and a BOS exists. */
  int[] encode(String text, boolean addBos);

  /** Decodes a whole sequence (see the class contract for what is left out or stripped). */
  default String decode(int[] ids) {
    IncrementalDecoder decoder = newDecoder();
    StringBuilder text = new StringBuilder();
    for (int id : ids) {
      text.append(decoder.append(id));
    }
    return text.append(decoder.flush()).toString();
  }

  /**
   * The raw bytes token {@code id} stands for, before any UTF-8 decoding: a byte-fallback token
   * gives its single byte, a word piece gives its UTF-8 text with the whitespace marker turned back
   * into a space, and a control token gives no bytes. The dummy-prefix space is not removed here
   * (that depends on the position, see {@link IncrementalDecoder}). Returns a fresh array.
   */
  byte[] tokenBytes(int id);

  /**
   * The token as written in the vocabulary (e.g. {@code "▁Hello"}, {@code "<0x0A>"}, {@code
   * "<s>"}).
   */
  String piece(int id);

  /** Number of ids; every id in {@code [0, vocabSize())} is valid. */
  int vocabSize();

  /** The beginning-of-sequence id, or -1 if the vocabulary has none. */
  int bos();

  /** The end-of-sequence id, or -1 if the vocabulary has none. */
  int eos();

  /**
   * Whether {@code id} is a control (special) token that decodes to no text, such as BOS or EOS.
   */
  boolean isControl(int id);

  /** A decoder for a sequence that starts with the first id appended (see {@link #decode}). */
  default IncrementalDecoder newDecoder() {
    return newDecoder(true);
  }

  /**
   * A streaming decoder.
   *
   * @param atSequenceStart true when the first id appended is the first token of the sequence (the
   *     dummy-prefix space of the first text token is then removed, as {@link #decode} does); false
   *     when the decoder continues an already decoded prefix, e.g. the tokens generated after a
   *     prompt, so that a leading space is kept unless the token follows a BOS appended to this
   *     decoder.
   */
  IncrementalDecoder newDecoder(boolean atSequenceStart);
}
