package io.kvant.engine.format.llama2c;

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

/** Mutating header bytes of a valid checkpoint gives a clean open or a ModelFormatException. */
class Llama2cFuzzTest {
  private static final byte[] VALID = Llama2cSamples.small(true);

  @Property(tries = 300)
  void mutatedHeadersFailOnlyWithModelFormatException(
      @ForAll @Size(min = 1, max = 4) List<@IntRange(min = 0, max = 27) Integer> at,
      @ForAll @Size(min = 4, max = 4) List<Byte> values)
      throws Exception {
    byte[] mutated = VALID.clone();
    for (int i = 0; i < at.size(); i++) {
      mutated[at.get(i)] = values.get(i);
    }
    Path file = Files.createTempFile("fuzz", ".bin");
    try {
      Files.write(file, mutated);
      try (Llama2cCheckpoint c = Llama2cReader.open(file)) {
        for (Llama2cTensor t : Llama2cTensor.values()) {
          var s = c.segment(t);
          s.get(ValueLayout.JAVA_BYTE, s.byteSize() - 1);
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
