package io.kvant.quant.artifact;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.engine.format.ModelFormatException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.constraints.Size;
import net.jqwik.api.statistics.Statistics;

/**
 * Random byte mutations and truncations of a valid {@value KvCalibrationFile#FILE_NAME} read
 * cleanly or fail with {@link ModelFormatException} naming the file, never anything else.
 */
class KvCalibrationFileFuzzTest {
  private static final byte[] VALID = valid();

  private static byte[] valid() {
    try {
      Path dir = Files.createTempDirectory("kvcal");
      try {
        return Files.readAllBytes(KvCalibrationFileTest.valid(dir));
      } finally {
        try (var s = Files.list(dir)) {
          for (Path p : s.toList()) {
            Files.delete(p);
          }
        }
        Files.delete(dir);
      }
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  @Property(tries = 400)
  void mutatedFilesFailOnlyWithModelFormatException(
      @ForAll @Size(min = 1, max = 4) List<@IntRange(min = 0, max = Integer.MAX_VALUE) Integer> at,
      @ForAll @Size(min = 4, max = 4) List<Byte> values)
      throws Exception {
    byte[] mutated = VALID.clone();
    for (int i = 0; i < at.size(); i++) {
      mutated[at.get(i) % mutated.length] = values.get(i);
    }
    readOrReject(mutated);
  }

  @Property(tries = 100)
  void truncatedFilesFailOnlyWithModelFormatException(
      @ForAll @IntRange(min = 0, max = Integer.MAX_VALUE) int cut) throws Exception {
    readOrReject(Arrays.copyOf(VALID, cut % VALID.length));
  }

  private static void readOrReject(byte[] bytes) throws Exception {
    Path dir = Files.createTempDirectory("kvcal-fuzz");
    Path file = dir.resolve(KvCalibrationFile.FILE_NAME);
    try {
      Files.write(file, bytes);
      try {
        KvCalibrationFile.read(file, KvCalibrationFileTest.CONFIG);
        Statistics.collect("read");
      } catch (ModelFormatException expected) {
        assertThat(expected.getMessage()).startsWith(KvCalibrationFile.FILE_NAME + ": ");
        Statistics.collect("rejected");
      }
    } finally {
      Files.deleteIfExists(file);
      Files.delete(dir);
    }
  }
}
