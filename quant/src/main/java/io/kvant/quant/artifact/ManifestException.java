package io.kvant.quant.artifact;

/** A manifest (or another bucket file) is malformed or breaks a bound; the message says where. */
public final class ManifestException extends Exception {
  public ManifestException(String message) {
    super(message);
  }

  public ManifestException(String message, Throwable cause) {
    super(message, cause);
  }
}
