package io.kvant.reload;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * The staging area: one {@code <version>.partial} folder per download in progress. Nothing in it is
 * trusted: a version's files are only used after every digest matched, and the folder is removed
 * after the version is built or refused.
 *
 * <p>The folder is kvant's own: {@link #claim} creates it (or takes an empty one) and writes the
 * marker file {@value #MARKER}; a non-empty folder without the marker is refused, so a mistyped
 * {@code --agent-staging-dir} never costs an operator's files. Even in a claimed folder only what
 * kvant writes ({@code *.partial} folders) is ever deleted.
 */
final class Staging {
  /** The marker file that makes a folder a kvant staging area. */
  static final String MARKER = ".kvant-staging";

  /** The file recording the version the server last committed to (see {@link #commit}). */
  static final String COMMITTED = "committed-version";

  private static final String PARTIAL = ".partial";

  private final Path root;

  Staging(Path root) {
    this.root = root.toAbsolutePath().normalize();
  }

  Path root() {
    return root;
  }

  /**
   * Makes {@link #root} kvant's staging area and removes the downloads a killed agent left behind.
   *
   * @throws IOException naming the folder when it is not a folder, or holds files and no marker
   */
  void claim() throws IOException {
    if (Files.exists(root, LinkOption.NOFOLLOW_LINKS) && !Files.isDirectory(root)) {
      throw new IOException("staging directory " + root + " exists and is not a folder");
    }
    Files.createDirectories(root);
    Path marker = root.resolve(MARKER);
    if (!Files.isRegularFile(marker, LinkOption.NOFOLLOW_LINKS)) {
      List<Path> foreign;
      try (Stream<Path> s = Files.list(root)) {
        foreign = s.limit(3).toList();
      }
      if (!foreign.isEmpty()) {
        throw new IOException(
            "staging directory "
                + root
                + " is not empty and is not a kvant staging area (no "
                + MARKER
                + " file); kvant deletes downloads there, so give it an empty or new folder"
                + " (found "
                + foreign.stream().map(p -> p.getFileName().toString()).toList()
                + ")");
      }
      Files.writeString(marker, "kvant reload agent staging area; safe to delete when stopped\n");
    }
    try (Stream<Path> s = Files.list(root)) {
      for (Path p : (Iterable<Path>) s::iterator) {
        if (isPartial(p)) {
          delete(p);
        }
      }
    }
  }

  private static boolean isPartial(Path p) {
    return p.getFileName().toString().endsWith(PARTIAL)
        && Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS);
  }

  /**
   * Records durably that the server now serves {@code version}: written to a temporary file, forced
   * to disk and renamed over {@value #COMMITTED}, so a kill at any moment leaves either the old
   * record or the new one.
   */
  void commit(String version) throws IOException {
    Path tmp = root.resolve(COMMITTED + ".tmp");
    try (java.nio.channels.FileChannel ch =
        java.nio.channels.FileChannel.open(
            tmp,
            java.nio.file.StandardOpenOption.CREATE,
            java.nio.file.StandardOpenOption.WRITE,
            java.nio.file.StandardOpenOption.TRUNCATE_EXISTING)) {
      ch.write(java.nio.ByteBuffer.wrap((version + "\n").getBytes(StandardCharsets.UTF_8)));
      ch.force(true);
    }
    try {
      Files.move(
          tmp,
          root.resolve(COMMITTED),
          StandardCopyOption.ATOMIC_MOVE,
          StandardCopyOption.REPLACE_EXISTING);
    } catch (AtomicMoveNotSupportedException e) {
      Files.move(tmp, root.resolve(COMMITTED), StandardCopyOption.REPLACE_EXISTING);
    }
  }

  /** The version last {@link #commit}ted, if any and well-formed. */
  Optional<String> committed() {
    try {
      Path f = root.resolve(COMMITTED);
      if (!Files.isRegularFile(f, LinkOption.NOFOLLOW_LINKS) || Files.size(f) > 256) {
        return Optional.empty();
      }
      String v = Files.readString(f, StandardCharsets.UTF_8).strip();
      return io.kvant.quant.artifact.ManifestCodec.isId(v) || isLocalId(v)
          ? Optional.of(v)
          : Optional.empty();
    } catch (IOException | java.io.UncheckedIOException e) {
      return Optional.empty();
    }
  }

  /** Ids of versions loaded from a local path look like {@code name@1a2b3c4d}. */
  private static boolean isLocalId(String v) {
    return v.matches("[A-Za-z0-9._+@-]{1,200}");
  }

  /** A fresh, empty folder for {@code version}'s download. */
  Path begin(String version) throws IOException {
    Path dir = partial(version);
    delete(dir);
    Files.createDirectories(dir);
    return dir;
  }

  /** Removes {@code version}'s download folder; failures are ignored (cleaned at next start). */
  void discard(String version) {
    try {
      delete(partial(version));
    } catch (IOException ignored) {
      // left for the next claim()
    }
  }

  private Path partial(String version) throws IOException {
    Path dir = root.resolve(version + PARTIAL).normalize();
    if (!dir.getParent().equals(root)) {
      throw new IOException("version id '" + version + "' is not a plain name");
    }
    return dir;
  }

  /** Deletes a folder kvant created; links inside are removed, never followed. */
  private static void delete(Path p) throws IOException {
    if (!Files.exists(p, LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    try (Stream<Path> walk = Files.walk(p)) {
      for (Path q : (Iterable<Path>) walk.sorted(Comparator.reverseOrder())::iterator) {
        Files.deleteIfExists(q);
      }
    }
  }
}
