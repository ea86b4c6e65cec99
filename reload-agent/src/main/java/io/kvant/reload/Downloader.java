package io.kvant.reload;

import io.kvant.quant.artifact.Digests;
import io.kvant.quant.artifact.Manifest;
import io.kvant.quant.artifact.Manifest.FileEntry;
import io.kvant.reload.bucket.Bucket;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;

/**
 * Copies a version's files from the bucket into its staging folder, checking each file's size and
 * sha256 against the manifest while it streams. A file longer than declared is cut off at the
 * declared size plus one byte; the thread's interrupt (agent shutdown) stops a copy between chunks.
 */
final class Downloader {
  private static final int CHUNK = 1 << 16;

  private final Bucket bucket;

  Downloader(Bucket bucket) {
    this.bucket = bucket;
  }

  /**
   * @return bytes downloaded
   * @throws Rejection for a missing file, a size or digest mismatch, or too many bytes
   * @throws InterruptedIOException when the thread was interrupted
   */
  long download(String prefix, Manifest m, Path dir, long maxBytes)
      throws Rejection, InterruptedIOException {
    long total = 0;
    for (FileEntry f : m.files()) {
      total += f.size();
    }
    if (total > maxBytes) {
      throw new Rejection(
          Rejection.Reason.TOO_LARGE,
          "version " + m.version() + " has " + total + " bytes, above " + maxBytes);
    }
    for (FileEntry f : m.files()) {
      copy(prefix + f.path(), f, dir.resolve(f.path()));
    }
    return total;
  }

  private void copy(String key, FileEntry f, Path dst) throws Rejection, InterruptedIOException {
    MessageDigest md = Digests.newSha256();
    long n = 0;
    try (InputStream in = bucket.open(key);
        OutputStream out = Files.newOutputStream(dst)) {
      byte[] buf = new byte[CHUNK];
      while (true) {
        if (Thread.currentThread().isInterrupted()) {
          throw new InterruptedIOException("download of " + key + " interrupted");
        }
        int want = (int) Math.min(buf.length, f.size() + 1 - n);
        if (want <= 0) {
          break;
        }
        int r = in.read(buf, 0, want);
        if (r < 0) {
          break;
        }
        md.update(buf, 0, r);
        out.write(buf, 0, r);
        n += r;
      }
    } catch (InterruptedIOException e) {
      throw e;
    } catch (FileNotFoundException | java.nio.file.NoSuchFileException e) {
      throw new Rejection(
          Rejection.Reason.MISSING_FILE,
          f.path() + ": listed in the manifest but not in the bucket");
    } catch (IOException e) {
      if (Thread.currentThread().isInterrupted()) {
        throw new InterruptedIOException("download of " + key + " interrupted");
      }
      throw new Rejection(
          Rejection.Reason.IO_ERROR, f.path() + ": download failed: " + e.getMessage(), e);
    }
    if (n != f.size()) {
      throw new Rejection(
          Rejection.Reason.SIZE_MISMATCH,
          f.path()
              + ": "
              + (n > f.size() ? "more than " : "")
              + n
              + " bytes, the manifest says "
              + f.size()
              + (n < f.size() ? " (truncated)" : ""));
    }
    String sha = HexFormat.of().formatHex(md.digest());
    if (!sha.equals(f.sha256())) {
      throw new Rejection(
          Rejection.Reason.DIGEST_MISMATCH,
          f.path() + ": sha256 " + sha + ", the manifest says " + f.sha256());
    }
  }
}
