package io.kvant.server;

import io.kvant.engine.forward.ComputeBackend;
import io.kvant.engine.kv.KvCacheType;
import io.kvant.engine.kv.KvEncoding;
import io.kvant.engine.kv.KvScales;
import io.kvant.engine.kv.KvStoreFactory;
import io.kvant.engine.model.Model;
import io.kvant.engine.tensor.ComputePool;
import io.kvant.quant.artifact.KvCalibrationFile;
import io.kvant.quant.artifact.QuantizedArtifact;
import java.io.IOException;
import java.lang.System.Logger;
import java.lang.System.Logger.Level;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.Optional;

/**
 * How {@code serve} stores its KV cache: the encoding ({@code --kv-encoding}, or the backend's
 * default) and the calibrated statistics the centered encodings need.
 *
 * <p>The statistics come from the served version folder's {@value KvCalibrationFile#FILE_NAME} when
 * it has one ({@code kvant quantize} writes it), otherwise from a pass at load ({@link
 * KvCalibrationAtLoad}). With the file and no {@code --kv-encoding}, the backend picks ({@link
 * ComputeBackend#defaultKvEncoding(KvCacheType, KvScales)}): {@code centered-qmse} for FP8, on the
 * CPU and on a GPU alike.
 *
 * <p>Hot swap: the pool is made once, so its statistics are those of the version served at start; a
 * later version's file is not read. Centering is exact for any mean (the stored key is {@code k -
 * R(t) m} and every score gets {@code q . R(t) m} back), so a stale mean costs precision, never
 * correctness.
 */
final class KvStorageChoice {
  private static final Logger LOG = System.getLogger("io.kvant.server");

  /** The encoding served and the store factory that implements it. */
  record Chosen(KvEncoding encoding, KvStoreFactory storage) {}

  private KvStorageChoice() {}

  /**
   * The statistics in {@code modelPath}'s {@value KvCalibrationFile#FILE_NAME}, for {@code model}'s
   * geometry and RoPE: empty for a model file or a folder without it.
   *
   * @throws IOException naming the folder and the file when the file is unlisted, tampered with,
   *     malformed or for another model
   */
  static Optional<KvScales> fromFolder(Path modelPath, Model model) throws IOException {
    if (!Files.isDirectory(modelPath) || !QuantizedArtifact.isArtifact(modelPath)) {
      return Optional.empty();
    }
    try {
      return QuantizedArtifact.kvCalibration(modelPath, model.config())
          .map(KvCalibrationFile.Contents::scales);
    } catch (io.kvant.engine.format.ModelFormatException e) {
      throw new IOException(modelPath + ": " + e.getMessage(), e);
    }
  }

  /**
   * Picks the encoding and builds its store factory.
   *
   * @param configured {@code --kv-encoding}, empty for the backend's default
   * @param folder the served folder's statistics ({@link #fromFolder})
   * @param first the model served at start (calibrated at load when a centered encoding is asked
   *     for and {@code folder} is empty)
   * @throws IOException naming {@code --kv-encoding} when the backend cannot serve it
   */
  static Chosen choose(
      String configured,
      KvCacheType type,
      ComputeBackend backend,
      Optional<KvScales> folder,
      Model first,
      ComputePool pool,
      Clock clock)
      throws IOException {
    if (configured.isEmpty()) {
      KvEncoding e = backend.defaultKvEncoding(type, folder.orElse(null));
      if (!e.needsScales()) {
        return new Chosen(e, backend.kvStorage());
      }
      // Only a backend handed statistics picks an encoding that needs them.
      LOG.log(
          Level.INFO,
          "kv cache: "
              + e.optionName()
              + " is the "
              + type
              + " default with calibrated statistics, from "
              + KvCalibrationFile.FILE_NAME);
      return new Chosen(e, backend.kvStorage(e, folder.orElseThrow()));
    }
    // Checked against --device cuda at load; here for auto, which may have opened a GPU.
    KvEncoding e = KvEncoding.parse(configured);
    try {
      if (!e.needsScales()) {
        return new Chosen(e, backend.kvStorage(e));
      }
      KvScales scales;
      if (e.centersKeys() && folder.isPresent()) {
        scales = folder.get();
        LOG.log(
            Level.INFO,
            "kv cache: " + e.optionName() + " statistics from " + KvCalibrationFile.FILE_NAME);
      } else {
        // A pass on the CPU over the host copy of the weights, whichever backend serves.
        long t0 = clock.millis();
        scales = KvCalibrationAtLoad.measure(first, pool, e);
        LOG.log(
            Level.INFO,
            "kv cache: "
                + e.optionName()
                + " calibrated on the built-in text in "
                + (clock.millis() - t0)
                + " ms");
      }
      return new Chosen(e, backend.kvStorage(e, scales));
    } catch (IllegalArgumentException ex) {
      throw new IOException("--kv-encoding: " + ex.getMessage(), ex);
    }
  }
}
