package io.kvant.engine.format.gguf;

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
class GgufFuzzTest {
  private static final byte[] VALID = GgufSamples.everything().toBytes();

  @Property(tries = 300)
  void mutatedFilesFailOnlyWithModelFormatException(
      @ForAll @Size(min = 1, max = 6) List<@IntRange(min = 0, max = Integer.MAX_VALUE) Integer> at,
      @ForAll @Size(min = 6, max = 6) List<Byte> values)
      throws Exception {
    byte[] mutated = VALID.clone();
    for (int i = 0; i < at.size(); i++) {
      mutated[at.get(i) % mutated.length] = values.get(i);
    }
    Path file = Files.createTempFile("fuzz", ".gguf");
    try {
      Files.write(file, mutated);
      try (GgufFile f = GgufReader.open(file)) {
        exercise(f);
        Statistics.collect("opened");
      } catch (ModelFormatException expected) {
        assertThat(expected.getMessage()).startsWith(file.getFileName() + ": ");
        Statistics.collect("rejected");
      }
    } finally {
      Files.delete(file);
    }
  }

  /** Everything a successful open promises must then work without unchecked exceptions. */
  static void exercise(GgufFile f) throws ModelFormatException {
    for (String key : f.keys()) {
      assertThat(f.metadata().value(key)).isPresent();
    }
    for (GgufTensorInfo t : f.tensors()) {
      if (t.type().isPresent()) {
        var data = f.tensorData(t);
        if (data.byteSize() > 0) {
          data.get(ValueLayout.JAVA_BYTE, data.byteSize() - 1);
        }
      }
    }
  }
}
