package io.kvant.reload.bucket;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.AwsCredentialsProvider;
import software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.GetObjectRequest;
import software.amazon.awssdk.services.s3.model.HeadObjectResponse;
import software.amazon.awssdk.services.s3.model.ListObjectsV2Request;
import software.amazon.awssdk.services.s3.model.ListObjectsV2Response;
import software.amazon.awssdk.services.s3.model.NoSuchKeyException;
import software.amazon.awssdk.services.s3.model.PutObjectRequest;
import software.amazon.awssdk.services.s3.model.S3Exception;
import software.amazon.awssdk.services.s3.model.S3Object;

/**
 * A {@link Bucket} over S3 (AWS SDK v2), or any S3-compatible store through an endpoint override
 * with path-style addressing. Listing pages through ListObjectsV2 and reports each object's ETag.
 * SDK exceptions become {@link IOException}s naming the key.
 */
public final class S3Bucket implements Bucket {
  private static final int PAGE = 1000;

  private final S3Client s3;
  private final String bucket;
  private final String prefix;

  /**
   * @param bucket bucket name
   * @param prefix key prefix inside the bucket ("" or ending with '/')
   */
  public S3Bucket(String bucket, String prefix, S3Settings settings) {
    this.bucket = bucket;
    this.prefix = prefix;
    AwsCredentialsProvider creds =
        settings.accessKey().isPresent()
            ? StaticCredentialsProvider.create(
                AwsBasicCredentials.create(settings.accessKey().get(), settings.secretKey().get()))
            : DefaultCredentialsProvider.builder().build();
    var b =
        S3Client.builder()
            .httpClient(UrlConnectionHttpClient.create())
            .region(Region.of(settings.region()))
            .credentialsProvider(creds)
            .forcePathStyle(settings.pathStyle());
    settings.endpoint().ifPresent(b::endpointOverride);
    this.s3 = b.build();
  }

  @Override
  public List<ObjectInfo> list(String keyPrefix, int limit) throws IOException {
    List<ObjectInfo> out = new ArrayList<>();
    String token = null;
    try {
      do {
        var req =
            ListObjectsV2Request.builder()
                .bucket(bucket)
                .prefix(prefix + keyPrefix)
                .maxKeys(Math.min(PAGE, Math.max(1, limit - out.size())));
        if (token != null) {
          req.continuationToken(token);
        }
        ListObjectsV2Response page = s3.listObjectsV2(req.build());
        for (S3Object o : page.contents()) {
          if (out.size() >= limit) {
            break;
          }
          out.add(new ObjectInfo(o.key().substring(prefix.length()), o.size(), o.eTag()));
        }
        token = Boolean.TRUE.equals(page.isTruncated()) ? page.nextContinuationToken() : null;
      } while (token != null && out.size() < limit);
    } catch (SdkException e) {
      throw new IOException(uri() + "/" + keyPrefix + ": listing failed: " + e.getMessage(), e);
    }
    return out;
  }

  @Override
  public Optional<ObjectInfo> stat(String key) throws IOException {
    try {
      HeadObjectResponse h = s3.headObject(r -> r.bucket(bucket).key(prefix + key));
      return Optional.of(new ObjectInfo(key, h.contentLength(), h.eTag()));
    } catch (NoSuchKeyException e) {
      return Optional.empty();
    } catch (S3Exception e) {
      if (e.statusCode() == 404) {
        return Optional.empty();
      }
      throw new IOException(uri() + "/" + key + ": " + e.getMessage(), e);
    } catch (SdkException e) {
      throw new IOException(uri() + "/" + key + ": " + e.getMessage(), e);
    }
  }

  @Override
  public InputStream open(String key) throws IOException {
    try {
      return s3.getObject(GetObjectRequest.builder().bucket(bucket).key(prefix + key).build());
    } catch (NoSuchKeyException e) {
      throw new FileNotFoundException(uri() + "/" + key + ": no such object");
    } catch (SdkException e) {
      throw new IOException(uri() + "/" + key + ": " + e.getMessage(), e);
    }
  }

  @Override
  public void put(String key, Path file) throws IOException {
    try {
      s3.putObject(
          PutObjectRequest.builder().bucket(bucket).key(prefix + key).build(),
          RequestBody.fromFile(file));
    } catch (SdkException e) {
      throw new IOException(uri() + "/" + key + ": upload failed: " + e.getMessage(), e);
    }
  }

  @Override
  public void put(String key, byte[] content) throws IOException {
    try {
      s3.putObject(
          PutObjectRequest.builder().bucket(bucket).key(prefix + key).build(),
          RequestBody.fromBytes(content));
    } catch (SdkException e) {
      throw new IOException(uri() + "/" + key + ": upload failed: " + e.getMessage(), e);
    }
  }

  /** Creates the bucket (tests, first-time setup); an existing bucket is fine. */
  public void createIfMissing() throws IOException {
    try {
      s3.createBucket(r -> r.bucket(bucket));
    } catch (software.amazon.awssdk.services.s3.model.BucketAlreadyOwnedByYouException
        | software.amazon.awssdk.services.s3.model.BucketAlreadyExistsException e) {
      // fine
    } catch (SdkException e) {
      throw new IOException(uri() + ": cannot create bucket: " + e.getMessage(), e);
    }
  }

  @Override
  public void requireExists() throws IOException {
    try {
      s3.headBucket(r -> r.bucket(bucket));
    } catch (software.amazon.awssdk.services.s3.model.NoSuchBucketException e) {
      throw new FileNotFoundException("bucket " + uri() + ": no such bucket");
    } catch (S3Exception e) {
      if (e.statusCode() == 404) {
        throw new FileNotFoundException("bucket " + uri() + ": no such bucket");
      }
      throw new IOException("bucket " + uri() + ": " + e.getMessage(), e);
    } catch (SdkException e) {
      throw new IOException("bucket " + uri() + ": " + e.getMessage(), e);
    }
  }

  @Override
  public String uri() {
    return "s3://" + bucket + (prefix.isEmpty() ? "" : "/" + prefix.replaceAll("/$", ""));
  }

  @Override
  public void close() {
    s3.close();
  }
}
