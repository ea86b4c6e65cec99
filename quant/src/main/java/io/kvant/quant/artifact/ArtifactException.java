package io.kvant.quant.artifact;

import java.io.IOException;

/** A malformed, incomplete or tampered artifact (manifest, digest mismatch, bad layout). */
public final class ArtifactException extends IOException {
  public ArtifactException(String message) {
    super(message);
  }

  public ArtifactException(String message, Throwable cause) {
    super(message, cause);
  }
}
