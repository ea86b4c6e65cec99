package io.kvant.reload.bucket;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * A {@link Bucket} over a local folder. Keys are relative paths; {@link #put} writes a temporary
 * sibling and renames it, so readers never see half a file. Keys that would leave the folder
 * ({@code ..}, absolute) are refused.
 */
public final class FileBucket implements Bucket {
  private static final int MAX_DEPTH = 8;

  private final Path root;

  public FileBucket(Path root) {
    this.root = root.toAbsolutePath().normalize();
  }

  /** The folder. */
  public Path root() {
    return root;
  }

  Path resolve(String key) throws IOException {
    if (key.isEmpty() || key.startsWith("/") || key.contains("\\") || key.contains("\0")) {
      throw new IOException("bad key '" + key + "'");
    }
    Path p = root.resolve(key).normalize();
    if (!p.startsWith(root) || p.equals(root)) {
      throw new IOException("key '" + key + "' leaves the bucket");
    }
    return p;
  }

  @Override
  public List<ObjectInfo> list(String prefix, int limit) throws IOException {
    // Walk from the deepest folder the prefix names, then filter by the full prefix.
    int slash = prefix.lastIndexOf('/');
    Path start = slash < 0 ? root : resolve(prefix.substring(0, slash));
    List<ObjectInfo> out = new ArrayList<>();
    if (!Files.isDirectory(start)) {
      return out;
    }
    try (Stream<Path> walk = Files.walk(start, MAX_DEPTH)) {
      for (Path p : (Iterable<Path>) walk.sorted()::iterator) {
        if (out.size() >= limit) {
          break;
        }
        String key = root.relativize(p).toString().replace('\\', '/');
        if (!key.startsWith(prefix) || p.getFileName().toString().startsWith(".kvant-tmp")) {
          continue;
        }
        BasicFileAttributes a;
        try {
          a = Files.readAttributes(p, BasicFileAttributes.class);
        } catch (NoSuchFileException gone) {
          continue;
        }
        if (a.isRegularFile()) {
          out.add(new ObjectInfo(key, a.size(), etag(a)));
        }
      }
    } catch (java.io.UncheckedIOException e) {
      throw e.getCause();
    }
    return out;
  }

  private static String etag(BasicFileAttributes a) {
    return a.size() + "-" + a.lastModifiedTime().toMillis();
  }

  @Override
  public Optional<ObjectInfo> stat(String key) throws IOException {
    Path p = resolve(key);
    try {
      BasicFileAttributes a = Files.readAttributes(p, BasicFileAttributes.class);
      return a.isRegularFile()
          ? Optional.of(new ObjectInfo(key, a.size(), etag(a)))
          : Optional.empty();
    } catch (NoSuchFileException e) {
      return Optional.empty();
    }
  }

  @Override
  public InputStream open(String key) throws IOException {
    Path p = resolve(key);
    try {
      return Files.newInputStream(p);
    } catch (NoSuchFileException e) {
      throw new FileNotFoundException(uri() + "/" + key + ": no such object");
    }
  }

  @Override
  public void put(String key, Path file) throws IOException {
    Path dst = resolve(key);
    Files.createDirectories(dst.getParent());
    Path tmp = dst.resolveSibling(".kvant-tmp-" + dst.getFileName());
    Files.copy(file, tmp, StandardCopyOption.REPLACE_EXISTING);
    move(tmp, dst);
  }

  @Override
  public void put(String key, byte[] content) throws IOException {
    Path dst = resolve(key);
    Files.createDirectories(dst.getParent());
    Path tmp = dst.resolveSibling(".kvant-tmp-" + dst.getFileName());
    Files.write(tmp, content);
    move(tmp, dst);
  }

  private static void move(Path tmp, Path dst) throws IOException {
    io.kvant.engine.format.FileModes.readableByAll(tmp);
    try {
      Files.move(tmp, dst, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } catch (AtomicMoveNotSupportedException e) {
      Files.move(tmp, dst, StandardCopyOption.REPLACE_EXISTING);
    }
  }

  @Override
  public void requireExists() throws IOException {
    if (!Files.isDirectory(root)) {
      throw new FileNotFoundException(
          "bucket " + uri() + ": no such folder (create it, or check the path)");
    }
  }

  @Override
  public String uri() {
    return root.toUri().toString();
  }

  @Override
  public void close() {}
}
