package io.kvant.reload.bucket;

import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Path;

/**
 * Opens a {@link Bucket} from its URI: {@code file:///abs/folder} or {@code s3://bucket/prefix}.
 */
public final class Buckets {
  private Buckets() {}

  /**
   * @throws IllegalArgumentException naming the URI when it is neither a file:// nor an s3:// URI
   */
  public static Bucket open(String uri, S3Settings s3) {
    if (uri.startsWith("file://")) {
      try {
        return new FileBucket(Path.of(new URI(uri)));
      } catch (URISyntaxException | IllegalArgumentException e) {
        // file://relative/path or spaces: take the rest literally.
        return new FileBucket(Path.of(uri.substring("file://".length())));
      }
    }
    if (uri.startsWith("s3://")) {
      String rest = uri.substring("s3://".length());
      int slash = rest.indexOf('/');
      String bucket = slash < 0 ? rest : rest.substring(0, slash);
      String prefix = slash < 0 ? "" : rest.substring(slash + 1);
      if (!bucket.matches("[a-z0-9][a-z0-9.-]{1,62}")) {
        throw new IllegalArgumentException(
            "bucket URI " + uri + ": bad bucket name '" + bucket + "'");
      }
      if (!prefix.isEmpty() && !prefix.endsWith("/")) {
        prefix += "/";
      }
      return new S3Bucket(bucket, prefix, s3);
    }
    throw new IllegalArgumentException(
        "bucket URI must start with file:// or s3://, got '" + uri + "'");
  }
}
