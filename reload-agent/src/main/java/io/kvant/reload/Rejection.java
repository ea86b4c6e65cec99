package io.kvant.reload;

import java.util.Locale;

/**
 * A version was refused; the serving version is untouched. {@link #reason} says why in one stable
 * code (events, metrics, tests and {@code kvant agent publish} all use it), the message says what.
 */
public final class Rejection extends Exception {
  /** Why a version was refused. {@link #code} is the stable wire form ({@code bad_manifest}). */
  public enum Reason {
    NO_MANIFEST,
    BAD_MANIFEST,
    MISSING_PARENT,
    MISSING_FILE,
    SIZE_MISMATCH,
    /** The version is larger than the agent's download limit. */
    TOO_LARGE,
    DIGEST_MISMATCH,
    BAD_TENSOR,
    SHAPE_MISMATCH,
    NON_FINITE,
    BAD_ENCODINGS,
    BAD_CALIBRATION,
    GATE_FAILED,
    SWAP_REFUSED,
    IO_ERROR,
    UNKNOWN_RECIPE,
    /** After a swap: the error rate passed the rollback threshold (automatic rollback). */
    ERROR_RATE,
    /** After a swap: shadowed live requests drifted from the previous version (rollback). */
    SHADOW_DRIFT,
    /** A channel file that does not name a version id. */
    BAD_CHANNEL;

    /** The lower-case code, e.g. {@code digest_mismatch}. */
    public String code() {
      return name().toLowerCase(Locale.ROOT);
    }

    @Override
    public String toString() {
      return code();
    }
  }

  private final Reason reason;

  public Rejection(Reason reason, String message) {
    super(message);
    this.reason = reason;
  }

  public Rejection(Reason reason, String message, Throwable cause) {
    super(message, cause);
    this.reason = reason;
  }

  public Reason reason() {
    return reason;
  }
}
