package io.kvant.reload.bucket;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;

/**
 * A bucket whose objects under one key prefix come from a local folder and all others from a base
 * bucket: how a version is verified before it is uploaded (its files are local, its parent and
 * channels are in the real bucket). Writes go to the folder and must be under the prefix; the base
 * bucket is only read, and is not closed with this one.
 */
public final class OverlayBucket implements Bucket {
  private final FileBucket local;
  private final Bucket base;
  private final String prefix;

  /**
   * @param local where the objects under {@code prefix} are
   * @param base everything else
   * @param prefix a key prefix ending in {@code /}, e.g. {@code model/versions/v2/}
   */
  public OverlayBucket(FileBucket local, Bucket base, String prefix) {
    if (!prefix.endsWith("/")) {
      throw new IllegalArgumentException("prefix must end with '/': " + prefix);
    }
    this.local = local;
    this.base = base;
    this.prefix = prefix;
  }

  private boolean isLocal(String key) {
    return key.startsWith(prefix);
  }

  @Override
  public List<ObjectInfo> list(String p, int limit) throws IOException {
    if (isLocal(p)) {
      return local.list(p, limit);
    }
    if (!prefix.startsWith(p)) {
      return base.list(p, limit);
    }
    List<ObjectInfo> all = new ArrayList<>(local.list(prefix, limit));
    for (ObjectInfo o : base.list(p, limit)) {
      if (!isLocal(o.key())) {
        all.add(o);
      }
    }
    all.sort(Comparator.comparing(ObjectInfo::key));
    return all.size() > limit ? List.copyOf(all.subList(0, limit)) : all;
  }

  /**
   * Nothing to check: the overlay only serves a check before an upload, and the first version
   * published to a new bucket is checked before that bucket exists (publishing creates it; a
   * server's agent never does).
   */
  @Override
  public void requireExists() {}

  @Override
  public Optional<ObjectInfo> stat(String key) throws IOException {
    return isLocal(key) ? local.stat(key) : base.stat(key);
  }

  @Override
  public InputStream open(String key) throws IOException {
    return isLocal(key) ? local.open(key) : base.open(key);
  }

  @Override
  public void put(String key, Path file) throws IOException {
    local.put(checked(key), file);
  }

  @Override
  public void put(String key, byte[] content) throws IOException {
    local.put(checked(key), content);
  }

  private String checked(String key) {
    if (!isLocal(key)) {
      throw new IllegalArgumentException(key + ": outside the overlay's " + prefix);
    }
    return key;
  }

  @Override
  public String uri() {
    return base.uri();
  }

  /** Closes nothing: the folder needs no closing and the base bucket belongs to the caller. */
  @Override
  public void close() {}
}
