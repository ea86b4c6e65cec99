package io.kvant.server.chat;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kvant.engine.model.Model;
import io.kvant.engine.model.ModelLoader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Where a model's chat template comes from: a GGUF's {@code tokenizer.chat_template}, a Hugging
 * Face folder's {@code tokenizer_config.json} (a string, or a list of named templates), or {@code
 * --chat-template FILE}, which wins over both. Real models from {@code ../shared/models}, with the
 * template added to a copy of their files.
 */
class ChatTemplatesTest {
  static final String CHATML =
      "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
          + "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
  static final List<ChatMessage> HELLO = List.of(new ChatMessage("user", "Hello"));
  static final String HELLO_CHATML = "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n";

  @TempDir Path dir;

  static Path shared(String name) {
    for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) {
      Path c = d.resolve("../shared/models").resolve(name).normalize();
      if (Files.exists(c)) {
        return c;
      }
    }
    throw new IllegalStateException("../shared/models/" + name + " not found");
  }

  @Test
  void aGgufWithoutATemplateHasNoneAndOneWithItsMetadataKeyHasThat() throws IOException {
    Path plain = shared("stories260K/stories260K.gguf");
    try (Model m = ModelLoader.load(plain, Optional.empty())) {
      assertThat(new ChatTemplates(Optional.empty()).forModel(m)).isEmpty();
    }
    Path withTemplate = dir.resolve("stories260K-chat.gguf");
    Files.write(
        withTemplate, withStringKey(Files.readAllBytes(plain), "tokenizer.chat_template", CHATML));
    try (Model m = ModelLoader.load(withTemplate, Optional.empty())) {
      ChatTemplates.ChatPrompt p = new ChatTemplates(Optional.empty()).forModel(m).orElseThrow();
      assertThat(p.template().source()).contains("tokenizer.chat_template");
      assertThat(p.template().render(HELLO, true)).isEqualTo(HELLO_CHATML);
    }
  }

  @Test
  void aFoldersTokenizerConfigGivesItsTemplateAsAStringOrAsTheDefaultOfAList() throws IOException {
    Path folder = copyOf(shared("tinystories-656k"));
    try (Model m = ModelLoader.load(folder, Optional.empty())) {
      assertThat(new ChatTemplates(Optional.empty()).forModel(m)).isEmpty();
    }
    setChatTemplate(folder, JSON.getNodeFactory().textNode(CHATML));
    try (Model m = ModelLoader.load(folder, Optional.empty())) {
      assertThat(
              new ChatTemplates(Optional.empty())
                  .forModel(m)
                  .orElseThrow()
                  .template()
                  .render(HELLO, true))
          .isEqualTo(HELLO_CHATML);
    }
    var list = JSON.createArrayNode();
    list.addObject().put("name", "tool_use").put("template", "tools: {{ messages[0].content }}");
    list.addObject().put("name", "default").put("template", CHATML);
    setChatTemplate(folder, list);
    try (Model m = ModelLoader.load(folder, Optional.empty())) {
      ChatTemplate t = new ChatTemplates(Optional.empty()).forModel(m).orElseThrow().template();
      assertThat(t.source()).contains("default");
      assertThat(t.render(HELLO, true)).isEqualTo(HELLO_CHATML);
    }
  }

  @Test
  void theConfiguredFileWinsOverTheModelsOwn() throws IOException {
    Path folder = copyOf(shared("tinystories-656k"));
    setChatTemplate(
        folder, JSON.getNodeFactory().textNode("model's own: {{ messages[0].content }}"));
    Path file = dir.resolve("override.jinja");
    Files.writeString(file, "override: {{ messages[0].content }}");
    try (Model m = ModelLoader.load(folder, Optional.empty())) {
      ChatTemplates templates = new ChatTemplates(Optional.of(file));
      templates.check(m);
      assertThat(templates.forModel(m).orElseThrow().template().render(HELLO, false))
          .isEqualTo("override: Hello");
    }
  }

  static final ObjectMapper JSON = new ObjectMapper();

  static void setChatTemplate(Path folder, com.fasterxml.jackson.databind.JsonNode template)
      throws IOException {
    Path config = folder.resolve("tokenizer_config.json");
    ObjectNode node = (ObjectNode) JSON.readTree(config.toFile());
    node.set("chat_template", template);
    JSON.writeValue(config.toFile(), node);
  }

  Path copyOf(Path source) throws IOException {
    Path target = dir.resolve(source.getFileName());
    Files.createDirectories(target);
    try (Stream<Path> files = Files.list(source)) {
      for (Path f : files.toList()) {
        Files.copy(f, target.resolve(f.getFileName()));
        target.resolve(f.getFileName()).toFile().setWritable(true);
      }
    }
    return target;
  }

  /**
   * The GGUF {@code file} with one more string key-value pair after its own: the header's count
   * goes up by one, and the tensor data moves to the next aligned offset (data offsets are relative
   * to the data section, so they stay as they are).
   */
  static byte[] withStringKey(byte[] file, String key, String value) {
    ByteBuffer in = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN);
    in.position(8);
    long tensors = in.getLong();
    long kvs = in.getLong();
    long alignment = 32;
    for (long i = 0; i < kvs; i++) {
      String k = string(in);
      int type = in.getInt();
      if (k.equals("general.alignment")) {
        alignment = in.getInt(in.position());
      }
      skipValue(in, type);
    }
    int kvEnd = in.position();
    for (long i = 0; i < tensors; i++) {
      string(in);
      int dims = in.getInt();
      in.position(in.position() + 8 * dims + 4 + 8);
    }
    int infoEnd = in.position();
    int dataStart = (int) ((infoEnd + alignment - 1) / alignment * alignment);

    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteBuffer head = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN);
    head.put(file, 0, 8).putLong(tensors).putLong(kvs + 1);
    out.writeBytes(head.array());
    out.write(file, 24, kvEnd - 24);
    byte[] k = key.getBytes(StandardCharsets.UTF_8);
    byte[] v = value.getBytes(StandardCharsets.UTF_8);
    ByteBuffer kv =
        ByteBuffer.allocate(8 + k.length + 4 + 8 + v.length).order(ByteOrder.LITTLE_ENDIAN);
    kv.putLong(k.length).put(k).putInt(8).putLong(v.length).put(v);
    out.writeBytes(kv.array());
    out.write(file, kvEnd, infoEnd - kvEnd);
    while (out.size() % alignment != 0) {
      out.write(0);
    }
    out.write(file, dataStart, file.length - dataStart);
    return out.toByteArray();
  }

  static String string(ByteBuffer in) {
    int n = (int) in.getLong();
    byte[] b = new byte[n];
    in.get(b);
    return new String(b, StandardCharsets.UTF_8);
  }

  static void skipValue(ByteBuffer in, int type) {
    switch (type) {
      case 0, 1, 7 -> in.position(in.position() + 1);
      case 2, 3 -> in.position(in.position() + 2);
      case 4, 5, 6 -> in.position(in.position() + 4);
      case 10, 11, 12 -> in.position(in.position() + 8);
      case 8 -> string(in);
      case 9 -> {
        int itemType = in.getInt();
        long n = in.getLong();
        for (long i = 0; i < n; i++) {
          skipValue(in, itemType);
        }
      }
      default -> throw new IllegalArgumentException("GGUF value type " + type);
    }
  }
}
