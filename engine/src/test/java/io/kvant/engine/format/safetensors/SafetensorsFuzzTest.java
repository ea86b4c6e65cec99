package io.kvant.engine.format.safetensors;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.engine.format.ModelFormatException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.constraints.Size;
import net.jqwik.api.statistics.Statistics;

/** Random byte mutations of a small valid file open cleanly or fail with ModelFormatException. */
class SafetensorsFuzzTest {
  private static final byte[] VALID = valid();

  private static byte[] valid() {
    try {
      Path tmp = Files.createTempFile("valid", ".safetensors");
      try {
        SafetensorsSamples.writer().write(tmp);
        return Files.readAllBytes(tmp);
      } finally {
        Files.delete(tmp);
      }
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  @Property(tries = 300)
  void mutatedFilesFailOnlyWithModelFormatException(
      @ForAll @Size(min = 1, max = 4) List<@IntRange(min = 0, max = Integer.MAX_VALUE) Integer> at,
      @ForAll @Size(min = 4, max = 4) List<Byte> values)
      throws Exception {
    byte[] mutated = VALID.clone();
    for (int i = 0; i < at.size(); i++) {
      mutated[at.get(i) % mutated.length] = values.get(i);
    }
    Path file = Files.createTempFile("fuzz", ".safetensors");
    try {
      Files.write(file, mutated);
      try (SafetensorsFile f = SafetensorsReader.open(file)) {
        for (String name : f.tensorNames()) {
          var data = f.tensorData(name);
          if (data.byteSize() > 0) {
            data.get(ValueLayout.JAVA_BYTE, data.byteSize() - 1);
          }
        }
        Statistics.collect("opened");
      } catch (ModelFormatException expected) {
        assertThat(expected.getMessage()).startsWith(file.getFileName() + ": ");
        Statistics.collect("rejected");
      }
    } finally {
      Files.delete(file);
    }
  }
}
