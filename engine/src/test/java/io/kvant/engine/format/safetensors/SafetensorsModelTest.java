package io.kvant.engine.format.safetensors;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvant.engine.format.ModelFormatException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsModelTest {
  @TempDir Path dir;

  private void writeShards() throws Exception {
    new SafetensorsWriter()
        .add("embed", SafetensorsDtype.F32, new long[] {2, 2}, SafetensorsSamples.bytes(16, 1))
        .add("layer.0", SafetensorsDtype.BF16, new long[] {3}, SafetensorsSamples.bytes(6, 2))
        .write(dir.resolve("model-00001-of-00002.safetensors"));
    new SafetensorsWriter()
        .add("layer.1", SafetensorsDtype.BF16, new long[] {3}, SafetensorsSamples.bytes(6, 3))
        .add("head", SafetensorsDtype.I8, new long[] {4}, SafetensorsSamples.bytes(4, 4))
        .write(dir.resolve("model-00002-of-00002.safetensors"));
  }

  private void writeIndex(String weightMap) throws Exception {
    Files.writeString(
        dir.resolve(SafetensorsModel.INDEX_FILE),
        "{\"metadata\":{\"total_size\":32},\"weight_map\":{" + weightMap + "}}");
  }

  private static final String GOOD_MAP =
      "\"embed\":\"model-00001-of-00002.safetensors\","
          + "\"layer.0\":\"model-00001-of-00002.safetensors\","
          + "\"layer.1\":\"model-00002-of-00002.safetensors\","
          + "\"head\":\"model-00002-of-00002.safetensors\"";

  @Test
  void opensShardedModelThroughIndex() throws Exception {
    writeShards();
    writeIndex(GOOD_MAP);
    for (Path p : new Path[] {dir, dir.resolve(SafetensorsModel.INDEX_FILE)}) {
      try (SafetensorsModel m = SafetensorsModel.open(p)) {
        assertThat(m.shards()).hasSize(2);
        assertThat(m.tensorNames()).containsExactly("embed", "layer.0", "layer.1", "head");
        assertThat(m.tensor("layer.1").dtype()).isEqualTo(SafetensorsDtype.BF16);
        assertThat(m.shardOf("head").path().getFileName().toString())
            .isEqualTo("model-00002-of-00002.safetensors");
        assertThat(m.tensorData("head").toArray(ValueLayout.JAVA_BYTE))
            .isEqualTo(SafetensorsSamples.bytes(4, 4));
        assertThat(m.tensorData("embed").toArray(ValueLayout.JAVA_BYTE))
            .isEqualTo(SafetensorsSamples.bytes(16, 1));
        assertThat(m.findTensor("nope")).isEmpty();
        assertThatThrownBy(() -> m.tensorData("nope"))
            .isInstanceOf(ModelFormatException.class)
            .hasMessageContaining("no tensor named 'nope' in any shard");
      }
    }
  }

  @Test
  void directoryWithoutIndexOpensAllShards() throws Exception {
    writeShards();
    try (SafetensorsModel m = SafetensorsModel.open(dir)) {
      assertThat(m.tensorNames()).containsExactlyInAnyOrder("embed", "layer.0", "layer.1", "head");
    }
    try (SafetensorsModel m =
        SafetensorsModel.open(dir.resolve("model-00002-of-00002.safetensors"))) {
      assertThat(m.tensorNames()).containsExactly("layer.1", "head");
    }
  }

  @Test
  void inconsistentIndexesAreRejected() throws Exception {
    writeShards();
    writeIndex("\"embed\":\"model-00002-of-00002.safetensors\"");
    assertThatThrownBy(() -> SafetensorsModel.open(dir))
        .isInstanceOf(ModelFormatException.class)
        .hasMessage(
            "model.safetensors.index.json: weight_map puts tensor 'embed' in"
                + " model-00002-of-00002.safetensors, which lacks it");
    writeIndex("\"embed\":\"../elsewhere.safetensors\"");
    assertThatThrownBy(() -> SafetensorsModel.open(dir))
        .isInstanceOf(ModelFormatException.class)
        .hasMessageContaining("not a plain file name");
    writeIndex("\"embed\":\"missing.safetensors\"");
    assertThatThrownBy(() -> SafetensorsModel.open(dir)).isInstanceOf(java.io.IOException.class);
    Files.writeString(dir.resolve(SafetensorsModel.INDEX_FILE), "{\"weight_map\":[]}");
    assertThatThrownBy(() -> SafetensorsModel.open(dir))
        .isInstanceOf(ModelFormatException.class)
        .hasMessageContaining("has no 'weight_map' object");
    Files.writeString(dir.resolve(SafetensorsModel.INDEX_FILE), "{oops");
    assertThatThrownBy(() -> SafetensorsModel.open(dir))
        .isInstanceOf(ModelFormatException.class)
        .hasMessageContaining("not valid JSON");
  }

  @Test
  void duplicateTensorAcrossShardsWithoutIndexIsRejected() throws Exception {
    writeShards();
    new SafetensorsWriter()
        .add("head", SafetensorsDtype.I8, new long[] {1}, new byte[1])
        .write(dir.resolve("extra.safetensors"));
    assertThatThrownBy(() -> SafetensorsModel.open(dir))
        .isInstanceOf(ModelFormatException.class)
        .hasMessageContaining("tensor 'head' is also in");
  }
}
