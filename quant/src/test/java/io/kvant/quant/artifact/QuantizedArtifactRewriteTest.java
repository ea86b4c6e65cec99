package io.kvant.quant.artifact;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.engine.model.Model;
import io.kvant.engine.testing.SharedModels;
import io.kvant.quant.quantize.Calibration;
import io.kvant.quant.quantize.QuantizedModel;
import io.kvant.quant.quantize.Quantizer;
import io.kvant.quant.quantize.Recipe;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link QuantizedArtifact#write} into a folder an earlier write used (the CLI no longer does, it
 * refuses a non-empty {@code --out}; the writer keeps its contract): KV statistics left by the
 * earlier write go, so the folder never holds statistics of other weights.
 */
class QuantizedArtifactRewriteTest {
  @Test
  void aRewriteWithoutStatisticsRemovesTheEarlierOnes(@TempDir Path dir) throws Exception {
    try (Model model =
        ModelOpener.load(SharedModels.require("stories260K/stories260K.gguf"), Optional.empty())) {
      QuantizedModel q =
          new Quantizer(Clock.systemUTC(), "test")
              .run(model, Recipe.resolve("w8"), Calibration.NONE);
      QuantizedArtifact.Info info =
          new QuantizedArtifact.Info("stories260K", "v1", null, "test", Instant.EPOCH);
      KvCalibrationFile.Contents kv =
          new KvCalibrationFile.Contents(
              KvCalibrationFileTest.scales(model.config(), 7), KvCalibrationFileTest.SOURCE);
      Manifest first = QuantizedArtifact.write(q.contents(), dir, info, Optional.of(kv));
      assertThat(dir.resolve(KvCalibrationFile.FILE_NAME)).exists();
      assertThat(first.file(KvCalibrationFile.FILE_NAME)).isPresent();

      Manifest second = QuantizedArtifact.write(q.contents(), dir, info, Optional.empty());
      assertThat(dir.resolve(KvCalibrationFile.FILE_NAME)).doesNotExist();
      assertThat(second.file(KvCalibrationFile.FILE_NAME)).isEmpty();
      assertThat(Manifest.read(dir)).isEqualTo(second);
    }
  }
}
