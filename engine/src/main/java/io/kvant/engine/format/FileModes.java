package io.kvant.engine.format;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * File modes of what kvant writes for others to read. Files written through a temporary file
 * ({@link Files#createTempFile}) are created 0600; model files, manifests and bucket objects are
 * read by other users (a server, an agent, a CI job), so they are set to 0644 before they are moved
 * into place.
 */
public final class FileModes {
  private FileModes() {}

  /** Sets {@code file} to rw-r--r-- where the file system has POSIX modes; else does nothing. */
  public static void readableByAll(Path file) throws IOException {
    if (Files.getFileAttributeView(file, PosixFileAttributeView.class) != null) {
      Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-r--r--"));
    }
  }
}
