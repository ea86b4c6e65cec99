package io.kvant.reload.bucket;

import java.net.URI;
import java.util.Objects;
import java.util.Optional;

/**
 * How to reach an S3 or S3-compatible store.
 *
 * @param endpoint endpoint override (MinIO, Ceph, a test server), empty for AWS
 * @param region signing region
 * @param pathStyle path-style addressing ({@code http://host/bucket/key}), needed by most
 *     S3-compatible stores
 * @param accessKey static access key, empty for the SDK's default credential chain
 * @param secretKey static secret key, set together with {@code accessKey}
 */
public record S3Settings(
    Optional<URI> endpoint,
    String region,
    boolean pathStyle,
    Optional<String> accessKey,
    Optional<String> secretKey) {
  public S3Settings {
    Objects.requireNonNull(region, "region");
    if (accessKey.isPresent() != secretKey.isPresent()) {
      throw new IllegalArgumentException("set both access key and secret key, or neither");
    }
  }

  /** AWS defaults: no endpoint override, us-east-1, default credentials. */
  public static S3Settings defaults() {
    return new S3Settings(Optional.empty(), "us-east-1", true, Optional.empty(), Optional.empty());
  }
}
