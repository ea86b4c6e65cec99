package io.kvant.cuda.device;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Compilers of the machine a test runs on (nvcc, g++): finding them and running them. */
public final class HostTools {
  private HostTools() {}

  /** {@code exe} on the PATH or in one of {@code extraDirs}, or null when there is none. */
  public static Path find(String exe, String... extraDirs) {
    String path = System.getenv().getOrDefault("PATH", "");
    for (String d :
        (path + File.pathSeparator + String.join(File.pathSeparator, extraDirs))
            .split(File.pathSeparator)) {
      if (!d.isEmpty() && Files.isExecutable(Path.of(d, exe))) {
        return Path.of(d, exe);
      }
    }
    return null;
  }

  /**
   * Runs {@code cmd}, its output into {@code log}; fails the test when it has not finished within
   * {@code seconds} (then it is killed) or exits non-zero (with the output in the message).
   */
  public static void run(List<String> cmd, Path log, int seconds) throws Exception {
    Process p =
        new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    if (!p.waitFor(seconds, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new AssertionError(cmd.get(0) + " still running after " + seconds + " s");
    }
    assertThat(p.exitValue()).as("%s: %s", cmd.get(0), Files.readString(log)).isZero();
  }
}
