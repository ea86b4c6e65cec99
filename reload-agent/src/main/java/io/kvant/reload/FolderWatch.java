package io.kvant.reload;

import java.io.IOException;
import java.lang.System.Logger;
import java.lang.System.Logger.Level;
import java.nio.file.ClosedWatchServiceException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardWatchEventKinds;
import java.nio.file.WatchKey;
import java.nio.file.WatchService;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Watches a {@code file://} bucket's model folder ({@code versions/}, each version folder, and
 * {@code channels/}) and calls {@code onChange} when anything appears or changes, so a new manifest
 * is picked up without waiting for the next poll. Polling keeps running as the fallback (a
 * WatchService may miss events on network file systems). At most {@value #MAX_DIRS} folders are
 * registered.
 */
final class FolderWatch implements AutoCloseable {
  static final int MAX_DIRS = 4096;
  private static final Logger LOG = System.getLogger("io.kvant.reload.FolderWatch");

  private final Path modelDir;
  private final Runnable onChange;
  private final WatchService ws;
  private final Thread thread;
  private int registered;
  private volatile boolean closed;

  FolderWatch(Path modelDir, Runnable onChange) throws IOException {
    this.modelDir = modelDir;
    this.onChange = onChange;
    this.ws = FileSystems.getDefault().newWatchService();
    // Nothing is created in the bucket: folders that do not exist yet are registered when they
    // appear (the bucket root itself must exist: the agent checks it at start).
    register(modelDir.getParent());
    registerTree(modelDir);
    this.thread = new Thread(this::run, "kvant-agent-folder-watch");
    thread.setDaemon(true);
    thread.start();
  }

  /** Registers {@code dir} if it is one of the watched folders, and the watched ones under it. */
  private void registerTree(Path dir) throws IOException {
    if (!Files.isDirectory(dir) || !watched(dir)) {
      return;
    }
    register(dir);
    try (Stream<Path> s = Files.list(dir)) {
      for (Path p : (Iterable<Path>) s::iterator) {
        registerTree(p);
      }
    }
  }

  private boolean watched(Path dir) {
    Path versions = modelDir.resolve("versions");
    return dir.equals(modelDir)
        || dir.equals(versions)
        || dir.equals(modelDir.resolve("channels"))
        || versions.equals(dir.getParent());
  }

  private void register(Path dir) throws IOException {
    if (registered >= MAX_DIRS) {
      return;
    }
    dir.register(
        ws,
        StandardWatchEventKinds.ENTRY_CREATE,
        StandardWatchEventKinds.ENTRY_MODIFY,
        StandardWatchEventKinds.ENTRY_DELETE);
    registered++;
  }

  private void run() {
    while (!closed) {
      WatchKey key;
      try {
        key = ws.poll(1, TimeUnit.SECONDS);
      } catch (InterruptedException | ClosedWatchServiceException e) {
        return;
      }
      if (key == null) {
        continue;
      }
      Path dir = (Path) key.watchable();
      for (var ev : key.pollEvents()) {
        if (ev.context() instanceof Path name
            && ev.kind() == StandardWatchEventKinds.ENTRY_CREATE) {
          Path child = dir.resolve(name);
          try {
            registerTree(child);
          } catch (IOException e) {
            LOG.log(Level.DEBUG, "cannot watch " + child + ": " + e.getMessage());
          }
        }
      }
      key.reset();
      onChange.run();
    }
  }

  @Override
  public void close() {
    closed = true;
    try {
      ws.close();
    } catch (IOException ignored) {
      // closing
    }
    thread.interrupt();
  }
}
