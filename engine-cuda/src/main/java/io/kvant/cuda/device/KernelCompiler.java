package io.kvant.cuda.device;

import io.kvant.cuda.driver.Nvrtc;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;

/**
 * Compiles kernel sources with NVRTC for one architecture and caches the CUBIN on disk.
 *
 * <p>The cache key is the SHA-256 of the source, the architecture, the driver version and the NVRTC
 * version: a changed kernel, another GPU generation or an upgraded toolkit each compile afresh.
 * Entries are written to a temporary file and moved into place, so a crash or two processes
 * compiling at once never leave a torn file behind. A cache that cannot be written is not an error
 * (the CUBIN is still returned).
 */
public final class KernelCompiler {
  private final Nvrtc nvrtc;
  private final Path cacheDir;
  private final String arch;
  private final int driverVersion;
  private int compiles;

  /**
   * @param arch the real architecture, e.g. {@code sm_90}
   */
  public KernelCompiler(Nvrtc nvrtc, Path cacheDir, String arch, int driverVersion) {
    this.nvrtc = nvrtc;
    this.cacheDir = cacheDir;
    this.arch = arch;
    this.driverVersion = driverVersion;
  }

  /** The cache key of {@code source} on this device and toolkit. */
  public String cacheKey(String source) {
    return cacheKey(source, arch, driverVersion, nvrtc.version());
  }

  /** The cache key: a pure function of the source, architecture, driver and NVRTC versions. */
  public static String cacheKey(
      String source, String arch, int driverVersion, String nvrtcVersion) {
    try {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      md.update(source.getBytes(java.nio.charset.StandardCharsets.UTF_8));
      String h = HexFormat.of().formatHex(md.digest()).substring(0, 24);
      return h + "-" + arch + "-drv" + driverVersion + "-nvrtc" + nvrtcVersion;
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** The CUBIN of {@code source}, from the cache or compiled now. */
  public byte[] cubin(String source, String name) {
    Path entry = cacheDir.resolve(cacheKey(source) + ".cubin");
    if (Files.isRegularFile(entry)) {
      try {
        return Files.readAllBytes(entry);
      } catch (IOException e) {
        // fall through and compile
      }
    }
    byte[] cubin =
        nvrtc.compileToCubin(
            source, name, List.of("--gpu-architecture=" + arch, "-default-device", "-std=c++17"));
    compiles++;
    store(entry, cubin);
    return cubin;
  }

  /** How many compiles this instance ran (cache misses). */
  public int compiles() {
    return compiles;
  }

  private static void store(Path entry, byte[] cubin) {
    try {
      Files.createDirectories(entry.getParent());
      Path tmp = Files.createTempFile(entry.getParent(), "kernel", ".tmp");
      Files.write(tmp, cubin);
      try {
        Files.move(tmp, entry, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      } catch (AtomicMoveNotSupportedException e) {
        Files.move(tmp, entry, StandardCopyOption.REPLACE_EXISTING);
      }
    } catch (IOException | UncheckedIOException e) {
      // A read-only or full cache directory costs a compile next time, nothing more.
    }
  }
}
