package io.kvant.reload;

/**
 * A version was refused; the serving version is untouched.
 *
 * <p>{@link #reason} is a short stable code (for events and tests): {@code no_manifest}, {@code
 * bad_manifest}, {@code missing_parent}, {@code missing_file}, {@code size_mismatch}, {@code
 * digest_mismatch}, {@code bad_tensor}, {@code shape_mismatch}, {@code non_finite}, {@code
 * bad_encodings}, {@code bad_calibration}, {@code gate_failed}, {@code swap_refused}, {@code
 * io_error}, {@code unknown_recipe}.
 */
public final class Rejection extends Exception {
  private final String reason;

  public Rejection(String reason, String message) {
    super(message);
    this.reason = reason;
  }

  public Rejection(String reason, String message, Throwable cause) {
    super(message, cause);
    this.reason = reason;
  }

  public String reason() {
    return reason;
  }
}
