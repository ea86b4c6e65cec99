package io.kvant.reload;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * The staging area: one {@code <version>.partial} folder per download in progress. Nothing in it is
 * trusted: a version's files are only used after every digest matched, and the folder is removed
 * after the version is built or refused. {@link #clean} at start removes what a killed agent left
 * behind.
 */
final class Staging {
  private final Path root;

  Staging(Path root) {
    this.root = root.toAbsolutePath().normalize();
  }

  Path root() {
    return root;
  }

  /** Removes everything under the staging root (start-up). */
  void clean() throws IOException {
    Files.createDirectories(root);
    try (Stream<Path> s = Files.list(root)) {
      for (Path p : (Iterable<Path>) s::iterator) {
        delete(p);
      }
    }
  }

  /** A fresh, empty folder for {@code version}'s download. */
  Path begin(String version) throws IOException {
    Path dir = root.resolve(version + ".partial");
    delete(dir);
    Files.createDirectories(dir);
    return dir;
  }

  /** Removes {@code version}'s download folder; failures are ignored (cleaned at next start). */
  void discard(String version) {
    try {
      delete(root.resolve(version + ".partial"));
    } catch (IOException ignored) {
      // left for the next clean()
    }
  }

  private static void delete(Path p) throws IOException {
    if (!Files.exists(p, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    try (Stream<Path> walk = Files.walk(p)) {
      for (Path q : (Iterable<Path>) walk.sorted(Comparator.reverseOrder())::iterator) {
        Files.deleteIfExists(q);
      }
    }
  }
}
