package io.kvant.reload.bucket;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * An artifact store of named objects: a local folder ({@code file://}) or an S3 bucket ({@code
 * s3://}). Keys use {@code /} separators and never start with one.
 *
 * <p>Contract: {@link #list} returns every object under a prefix with its size and an entity tag
 * that changes when the content changes; {@link #open} streams one object; {@link #put} makes an
 * object visible atomically (a reader sees the whole new content or none of it). Implementations
 * are thread-safe.
 */
public interface Bucket extends AutoCloseable {
  /** Every object whose key starts with {@code prefix}, in key order, at most {@code limit}. */
  List<ObjectInfo> list(String prefix, int limit) throws IOException;

  /** The object at {@code key}, or empty when there is none. */
  Optional<ObjectInfo> stat(String key) throws IOException;

  /**
   * Streams the object's bytes.
   *
   * @throws java.io.FileNotFoundException when there is no such object
   */
  InputStream open(String key) throws IOException;

  /** Stores {@code file}'s content at {@code key}, replacing what was there. */
  void put(String key, Path file) throws IOException;

  /** Stores small content at {@code key}. */
  void put(String key, byte[] content) throws IOException;

  /**
   * Checks that the bucket exists and can be listed, creating nothing: a mistyped bucket fails at
   * start instead of being watched (or created) forever.
   *
   * @throws IOException naming the bucket when it does not exist or cannot be reached
   */
  void requireExists() throws IOException;

  /** Where this bucket is, as a URI (for messages). */
  String uri();

  @Override
  void close();

  /** Reads a small object whole, refusing one larger than {@code maxBytes}. */
  default Optional<byte[]> readSmall(String key, int maxBytes) throws IOException {
    Optional<ObjectInfo> info = stat(key);
    if (info.isEmpty()) {
      return Optional.empty();
    }
    if (info.get().size() > maxBytes) {
      throw new IOException(
          uri() + "/" + key + ": " + info.get().size() + " bytes, more than " + maxBytes);
    }
    try (InputStream in = open(key)) {
      byte[] b = in.readNBytes(maxBytes + 1);
      if (b.length > maxBytes) {
        throw new IOException(uri() + "/" + key + ": more than " + maxBytes + " bytes");
      }
      return Optional.of(b);
    } catch (java.io.FileNotFoundException | java.nio.file.NoSuchFileException e) {
      return Optional.empty();
    }
  }
}
