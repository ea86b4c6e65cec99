package io.kvant.quant.artifact;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * SHA-256 digests as lower-case hex: the one digest helper of kvant (files in manifests, tensor
 * bytes, calibration text, QBOM source digests).
 */
public final class Digests {
  private Digests() {}

  /** A fresh SHA-256 digester, for callers that stream bytes into it. */
  public static MessageDigest newSha256() {
    return sha();
  }

  /** {@code md}'s digest as lower-case hex. */
  public static String hex(MessageDigest md) {
    return HexFormat.of().formatHex(md.digest());
  }

  private static MessageDigest sha() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  public static String sha256(byte[] bytes) {
    return HexFormat.of().formatHex(sha().digest(bytes));
  }

  /** Digest of all bytes of {@code seg}, read in chunks. */
  public static String sha256(MemorySegment... segs) {
    MessageDigest md = sha();
    for (MemorySegment seg : segs) {
      long chunk = 1 << 20;
      for (long at = 0; at < seg.byteSize(); at += chunk) {
        md.update(
            seg.asSlice(at, Math.min(chunk, seg.byteSize() - at))
                .toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
      }
    }
    return HexFormat.of().formatHex(md.digest());
  }

  /** Digest of a file's content. */
  public static String sha256(Path file) throws IOException {
    MessageDigest md = sha();
    try (InputStream in = Files.newInputStream(file)) {
      byte[] buf = new byte[1 << 16];
      for (int n; (n = in.read(buf)) > 0; ) {
        md.update(buf, 0, n);
      }
    }
    return HexFormat.of().formatHex(md.digest());
  }
}
