package io.kvant.reload;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kvant.engine.format.safetensors.SafetensorsFile;
import io.kvant.engine.format.safetensors.SafetensorsReader;
import io.kvant.engine.format.safetensors.SafetensorsTensor;
import io.kvant.engine.format.safetensors.SafetensorsWriter;
import io.kvant.engine.model.WeightLayout;
import io.kvant.quant.artifact.Digests;
import io.kvant.quant.artifact.Manifest;
import io.kvant.quant.artifact.QuantizedArtifact;
import io.kvant.quant.quantize.Calibration;
import io.kvant.quant.quantize.QuantizedModel;
import io.kvant.quant.quantize.Quantizer;
import io.kvant.quant.quantize.Recipe;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The agent reads pre-quantized tensors from bucket files, so the {@code kvant.layout} metadata
 * that describes them is outside input: mutated layouts (rows, cols, group sizes, dtypes, whole
 * entries, the JSON itself) and dropped or resized companions give a {@link Rejection} or a version
 * whose matrices have the model's shapes, never another exception.
 */
class VersionReaderFuzzTest {
  static final ObjectMapper JSON = new ObjectMapper();
  @TempDir static Path tmp;
  static Fixture fx;
  static Map<String, byte[]> data = new LinkedHashMap<>();
  static Map<String, SafetensorsTensor> tensors = new LinkedHashMap<>();
  static ObjectNode layout;

  @BeforeAll
  static void quantize() throws Exception {
    fx = new Fixture(tmp);
    Calibration cal =
        Calibration.fromText(Calibration.builtinCalibrationText(), fx.model.tokenizer(), 64);
    QuantizedModel qm = new Quantizer(fx.clock, "t").run(fx.model, Recipe.resolve("w4g32"), cal);
    Path dir = tmp.resolve("q");
    QuantizedArtifact.write(
        qm.contents(),
        dir,
        new QuantizedArtifact.Info(Fixture.MODEL, "q", null, "t", fx.clock.instant()));
    try (SafetensorsFile sf = SafetensorsReader.open(dir.resolve("model.safetensors"))) {
      layout = (ObjectNode) JSON.readTree(sf.metadata().get("kvant.layout"));
      for (SafetensorsTensor t : sf.tensors()) {
        tensors.put(t.name(), t);
        data.put(t.name(), sf.tensorData(t.name()).toArray(ValueLayout.JAVA_BYTE));
      }
    }
  }

  @AfterAll
  static void close() throws Exception {
    fx.close();
  }

  @Test
  void mutatedLayoutsAndCompanionsAreRejectedCleanly() throws Exception {
    WeightLayout slots = WeightLayout.of(fx.model);
    Random r = new Random(16);
    List<String> matrices = new ArrayList<>();
    layout
        .fieldNames()
        .forEachRemaining(
            n -> {
              if (layout.get(n).isObject()) {
                matrices.add(n);
              }
            });
    int rejected = 0;
    int read = 0;
    for (int i = 0; i < 300; i++) {
      ObjectNode l = layout.deepCopy();
      Map<String, byte[]> d = new LinkedHashMap<>(data);
      String layoutText = null;
      String m = matrices.get(r.nextInt(matrices.size()));
      switch (r.nextInt(7)) {
        case 0 -> ((ObjectNode) l.get(m)).put(pick(r, "rows", "cols", "group_size"), number(r));
        case 1 ->
            ((ObjectNode) l.get(m))
                .put("dtype", pick(r, "I4", "I8", "F8_E4M3", "Q4_0", "Q8_0", "F16", "nope", ""));
        case 2 -> l.remove(m);
        case 3 -> l.put(m, pick(r, "x", "1"));
        case 4 -> d.remove(pick(r, m + ".scale", m + ".zero"));
        case 5 -> {
          String c = m + ".scale";
          if (d.containsKey(c)) {
            d.put(c, java.util.Arrays.copyOf(d.get(c), Math.max(0, d.get(c).length - 4)));
          }
        }
        default -> {
          String text = l.toString();
          layoutText = text.substring(0, r.nextInt(text.length()));
        }
      }
      Path dir = Files.createDirectories(tmp.resolve("f" + i));
      SafetensorsWriter w = new SafetensorsWriter();
      w.metadata("kvant.layout", layoutText != null ? layoutText : l.toString());
      List<Manifest.TensorEntry> entries = new ArrayList<>();
      for (var e : d.entrySet()) {
        SafetensorsTensor t = tensors.get(e.getKey());
        long[] shape = t.shape();
        if (e.getValue().length != data.get(e.getKey()).length) {
          shape = new long[] {e.getValue().length / 4};
        }
        w.add(e.getKey(), t.dtype(), shape, e.getValue());
        entries.add(
            new Manifest.TensorEntry(
                e.getKey(),
                "model.safetensors",
                t.dtype().name(),
                java.util.Arrays.stream(shape).boxed().toList(),
                Digests.sha256(e.getValue())));
      }
      Path file = dir.resolve("model.safetensors");
      w.write(file);
      Manifest manifest =
          new Manifest(
              Fixture.MODEL,
              "f" + i,
              Optional.empty(),
              fx.clock.instant(),
              "t",
              "none",
              List.of(
                  new Manifest.FileEntry(
                      "model.safetensors", Files.size(file), Digests.sha256(file))),
              entries,
              Optional.empty(),
              Optional.empty());
      try {
        var weights = slots.assemble(VersionReader.read(manifest, dir, slots));
        assertThat(weights.layers()).hasSize(fx.model.config().layers());
        read++;
      } catch (Rejection e) {
        assertThat(e.getMessage()).isNotBlank();
        rejected++;
      }
    }
    System.out.printf("FUZZ layouts: %d rejected, %d read%n", rejected, read);
    assertThat(rejected).isPositive();
  }

  private static String pick(Random r, String... options) {
    return options[r.nextInt(options.length)];
  }

  private static long number(Random r) {
    long[] edge = {0, -1, 1, 2, 7, 31, 64, 1L << 31, Integer.MAX_VALUE, -Integer.MAX_VALUE};
    return r.nextBoolean() ? edge[r.nextInt(edge.length)] : r.nextInt(4096);
  }
}
