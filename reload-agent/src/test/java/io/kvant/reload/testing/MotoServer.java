package io.kvant.reload.testing;

import io.kvant.reload.bucket.S3Bucket;
import io.kvant.reload.bucket.S3Settings;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;

/**
 * A real S3 API server for tests: moto ({@code python3 -m moto.server}) on a free 127.0.0.1 port,
 * started by the test and stopped after it. When moto is not installed the test is skipped with a
 * message saying so (the CI image has moto 5.2.1, as this machine does).
 */
public final class MotoServer implements AutoCloseable {
  private static final long START_TIMEOUT_MS = 60_000;

  private final Process process;
  private final int port;

  private MotoServer(Process process, int port) {
    this.process = process;
    this.port = port;
  }

  /** Starts moto, or aborts the calling test when python3/moto are missing. */
  public static MotoServer start(Path logDir) throws IOException, InterruptedException {
    int port;
    try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      port = s.getLocalPort();
    }
    Files.createDirectories(logDir);
    Process p;
    try {
      p =
          new ProcessBuilder(
                  "python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", Integer.toString(port))
              .redirectErrorStream(true)
              .redirectOutput(logDir.resolve("moto.log").toFile())
              .start();
    } catch (IOException e) {
      Assumptions.abort("python3 is not installed: S3 tests need `python3 -m moto.server`");
      throw e;
    }
    long deadline = System.nanoTime() + START_TIMEOUT_MS * 1_000_000;
    while (System.nanoTime() < deadline) {
      if (!p.isAlive()) {
        String log = Files.readString(logDir.resolve("moto.log"));
        if (log.contains("No module named")) {
          Assumptions.abort("moto is not installed (pip install 'moto[server]'): S3 tests skipped");
        }
        throw new IOException("moto exited: " + log);
      }
      try (Socket s = new Socket()) {
        s.connect(new InetSocketAddress("127.0.0.1", port), 200);
        return new MotoServer(p, port);
      } catch (IOException notYet) {
        Thread.sleep(100);
      }
    }
    p.destroyForcibly();
    throw new IOException("moto did not start within " + START_TIMEOUT_MS + " ms");
  }

  public URI endpoint() {
    return URI.create("http://127.0.0.1:" + port);
  }

  public S3Settings settings() {
    return new S3Settings(
        Optional.of(endpoint()), "us-east-1", true, Optional.of("test"), Optional.of("test"));
  }

  /** A fresh bucket (created) under {@code name}. */
  public S3Bucket bucket(String name) throws IOException {
    S3Bucket b = new S3Bucket(name, "", settings());
    b.createIfMissing();
    return b;
  }

  @Override
  public void close() throws InterruptedException {
    process.destroy();
    if (!process.waitFor(10, TimeUnit.SECONDS)) {
      process.destroyForcibly();
    }
  }
}
