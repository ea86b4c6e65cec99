package io.kvant.reload;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.reload.bucket.Bucket;
import io.kvant.reload.bucket.FileBucket;
import io.kvant.reload.bucket.ObjectInfo;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An agent killed mid-download leaves a partial file; the next one cleans it and gets the version.
 */
class AgentRestartTest {
  @TempDir Path tmp;

  @Test
  void aRestartedAgentCleansStagingAndPicksTheVersionUpAgain() throws Exception {
    try (Fixture fx = new Fixture(tmp)) {
      FileBucket folder = new FileBucket(tmp.resolve("bucket"));
      fx.publish(folder, "v1", Optional.empty(), "w8", fx.tensors());
      CountDownLatch midway = new CountDownLatch(1);
      AtomicBoolean stall = new AtomicBoolean(true);
      Bucket stalling = new StallingBucket(folder, stall, midway);

      ReloadAgent first =
          new ReloadAgent(
              fx.settings(),
              stalling,
              fx.target,
              (s, v, m, a) -> {},
              fx.clock,
              PollScheduler.singleThread("test-agent"),
              fx.pool,
              new RecipeRequantizer());
      first.start();
      Thread poller = new Thread(first::pollOnce);
      poller.start();
      assertThat(midway.await(20, TimeUnit.SECONDS)).isTrue();
      Path partial = tmp.resolve("staging/v1.partial/model.safetensors");
      try (Stream<Path> s = Files.walk(tmp.resolve("staging"))) {
        assertThat(partial).as(s.toList().toString()).exists();
      }
      // Kill: the download thread is interrupted and the agent stops; the partial file stays.
      poller.interrupt();
      poller.join(10_000);
      first.close();
      assertThat(poller.isAlive()).isFalse();
      assertThat(partial).exists();
      assertThat(fx.target.serving.id()).isEqualTo("base");

      stall.set(false);
      ReloadAgent second = fx.agent(stalling, fx.settings());
      try (Stream<Path> s = Files.list(tmp.resolve("staging"))) {
        assertThat(s.map(p -> p.getFileName().toString())).containsExactly(Staging.MARKER);
      }
      assertThat(second.pollOnce()).contains("v1");
      assertThat(fx.target.serving.id()).isEqualTo("v1");
      second.close();
    }
  }

  /** Delivers the first 4 KiB of a safetensors file, then blocks until interrupted. */
  record StallingBucket(FileBucket inner, AtomicBoolean stall, CountDownLatch midway)
      implements Bucket {
    @Override
    public List<ObjectInfo> list(String prefix, int limit) throws IOException {
      return inner.list(prefix, limit);
    }

    @Override
    public Optional<ObjectInfo> stat(String key) throws IOException {
      return inner.stat(key);
    }

    @Override
    public InputStream open(String key) throws IOException {
      InputStream in = inner.open(key);
      if (!stall.get() || !key.endsWith(".safetensors")) {
        return in;
      }
      return new FilterInputStream(in) {
        long read;

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
          if (read >= 4096) {
            midway.countDown();
            try {
              new CountDownLatch(1).await(30, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
              throw new InterruptedIOException("killed");
            }
          }
          int n = super.read(b, off, (int) Math.min(len, 4096 - read > 0 ? 4096 - read : len));
          read += Math.max(0, n);
          return n;
        }
      };
    }

    @Override
    public void put(String key, Path file) throws IOException {
      inner.put(key, file);
    }

    @Override
    public void put(String key, byte[] content) throws IOException {
      inner.put(key, content);
    }

    @Override
    public void requireExists() throws IOException {
      inner.requireExists();
    }

    @Override
    public String uri() {
      return inner.uri();
    }

    @Override
    public void close() {}
  }
}
