package io.kvant.reload.bucket;

import java.util.Objects;

/**
 * One object of a {@link Bucket}.
 *
 * @param key full key inside the bucket
 * @param size bytes
 * @param etag entity tag: changes whenever the content changes (S3 ETag; size and mtime for a
 *     folder)
 */
public record ObjectInfo(String key, long size, String etag) {
  public ObjectInfo {
    Objects.requireNonNull(key, "key");
    Objects.requireNonNull(etag, "etag");
    if (size < 0) {
      throw new IllegalArgumentException("size < 0: " + size);
    }
  }
}
