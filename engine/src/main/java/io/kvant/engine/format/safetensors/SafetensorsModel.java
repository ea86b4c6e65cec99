package io.kvant.engine.format.safetensors;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import io.kvant.engine.format.ModelFormatException;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Stream;

/**
 * A model stored as one or more safetensors shards, with tensors looked up by name across them.
 *
 * <p>{@link #open(Path)} accepts: a {@code *.safetensors.index.json} file (its {@code weight_map}
 * maps each tensor name to a shard file name in the same directory); a directory holding {@value
 * #INDEX_FILE} (used as above) or else one or more {@code *.safetensors} files (all opened; a
 * tensor name in two of them is an error); or a single {@code .safetensors} file. Shard names in an
 * index must be plain file names (no directory parts), and every tensor the index names must exist
 * in the shard it points to. Closing the model closes all shards.
 *
 * <p>Aliases: a shard's {@code __metadata__} entry whose key is not a tensor and whose value names
 * a tensor makes the key another name of that tensor. This is how PyTorch's safetensors export
 * keeps a tied weight it stored once (TinyStories-656K has {@code "model.embed_tokens.weight":
 * "lm_head.weight"}); every lookup here resolves such names.
 */
public final class SafetensorsModel implements AutoCloseable {
  /** The index file name that Hugging Face uses for sharded checkpoints. */
  public static final String INDEX_FILE = "model.safetensors.index.json";

  private static final long MAX_INDEX_BYTES = 64L << 20;

  private final Path source;
  private final List<SafetensorsFile> shards;
  private final Map<String, SafetensorsFile> byTensor;
  private final Map<String, String> aliases;

  private SafetensorsModel(
      Path source, List<SafetensorsFile> shards, Map<String, SafetensorsFile> byTensor) {
    this.source = source;
    this.shards = List.copyOf(shards);
    this.byTensor = Collections.unmodifiableMap(byTensor);
    Map<String, String> a = new LinkedHashMap<>();
    for (SafetensorsFile shard : shards) {
      for (Map.Entry<String, String> e : shard.metadata().entrySet()) {
        if (!byTensor.containsKey(e.getKey()) && byTensor.containsKey(e.getValue())) {
          a.putIfAbsent(e.getKey(), e.getValue());
        }
      }
    }
    this.aliases = Collections.unmodifiableMap(a);
  }

  /** The tensor name {@code name} stands for: itself, or the target of a metadata alias. */
  private String resolve(String name) {
    return aliases.getOrDefault(name, name);
  }

  /** Metadata aliases: other name to tensor name. */
  public Map<String, String> aliases() {
    return aliases;
  }

  /**
   * Opens the model at {@code path} (index file, directory, or single file; see the class doc).
   *
   * @throws ModelFormatException if the index or any shard is malformed or inconsistent
   */
  public static SafetensorsModel open(Path path) throws IOException {
    if (Files.isDirectory(path)) {
      Path index = path.resolve(INDEX_FILE);
      if (Files.isRegularFile(index)) {
        return openIndex(index);
      }
      List<Path> files;
      try (Stream<Path> s = Files.list(path)) {
        files =
            s.filter(p -> p.getFileName().toString().endsWith(".safetensors")).sorted().toList();
      }
      if (files.isEmpty()) {
        throw new ModelFormatException(path, "directory holds no .safetensors files");
      }
      return openAll(path, files);
    }
    if (path.getFileName() != null && path.getFileName().toString().endsWith(".json")) {
      return openIndex(path);
    }
    return openAll(path, List.of(path));
  }

  private static SafetensorsModel openAll(Path source, List<Path> files) throws IOException {
    List<SafetensorsFile> opened = new ArrayList<>();
    try {
      Map<String, SafetensorsFile> byTensor = new LinkedHashMap<>();
      for (Path f : files) {
        SafetensorsFile shard = SafetensorsReader.open(f);
        opened.add(shard);
        for (String name : shard.tensorNames()) {
          SafetensorsFile other = byTensor.putIfAbsent(name, shard);
          if (other != null) {
            throw new ModelFormatException(
                f, "tensor '" + name + "' is also in " + other.path().getFileName());
          }
        }
      }
      return new SafetensorsModel(source, opened, byTensor);
    } catch (IOException | RuntimeException e) {
      opened.forEach(SafetensorsFile::close);
      throw e;
    }
  }

  private static SafetensorsModel openIndex(Path index) throws IOException {
    long size = Files.size(index);
    if (size > MAX_INDEX_BYTES) {
      throw new ModelFormatException(index, "index is " + size + " bytes, larger than the limit");
    }
    JsonNode root;
    try {
      root = SafetensorsReader.STRICT_JSON.readTree(Files.readAllBytes(index));
    } catch (JacksonException e) {
      throw new ModelFormatException(index, "not valid JSON: " + e.getOriginalMessage(), e);
    }
    JsonNode weightMap = root == null ? null : root.get("weight_map");
    if (weightMap == null || !weightMap.isObject()) {
      throw new ModelFormatException(index, "has no 'weight_map' object");
    }
    Path dir = index.toAbsolutePath().getParent();
    Map<String, SafetensorsFile> shardsByName = new LinkedHashMap<>();
    Map<String, SafetensorsFile> byTensor = new LinkedHashMap<>();
    try {
      for (Map.Entry<String, JsonNode> e : weightMap.properties()) {
        String shardName = shardName(index, e.getKey(), e.getValue());
        SafetensorsFile shard = shardsByName.get(shardName);
        if (shard == null) {
          shard = SafetensorsReader.open(dir.resolve(shardName));
          shardsByName.put(shardName, shard);
        }
        if (!shard.contains(e.getKey())) {
          throw new ModelFormatException(
              index,
              "weight_map puts tensor '" + e.getKey() + "' in " + shardName + ", which lacks it");
        }
        byTensor.put(e.getKey(), shard);
      }
      return new SafetensorsModel(index, new ArrayList<>(shardsByName.values()), byTensor);
    } catch (IOException | RuntimeException e) {
      shardsByName.values().forEach(SafetensorsFile::close);
      throw e;
    }
  }

  private static String shardName(Path index, String tensor, JsonNode node)
      throws ModelFormatException {
    if (!node.isTextual()) {
      throw new ModelFormatException(
          index, "weight_map entry for '" + tensor + "' is not a file name string");
    }
    String name = node.textValue();
    if (name.isEmpty()
        || name.contains("/")
        || name.contains("\\")
        || name.equals(".")
        || name.equals("..")
        || name.indexOf('\0') >= 0) {
      throw new ModelFormatException(
          index,
          "weight_map entry for '" + tensor + "' names '" + name + "', not a plain file name");
    }
    return name;
  }

  /** What the model was opened from (index file, directory or single file). */
  public Path source() {
    return source;
  }

  /** The opened shard files. */
  public List<SafetensorsFile> shards() {
    return shards;
  }

  /** All tensor names (index order for an index, else file then header order). */
  public Set<String> tensorNames() {
    return byTensor.keySet();
  }

  /** The tensor named {@code name}, or empty. */
  public Optional<SafetensorsTensor> findTensor(String name) {
    String real = resolve(name);
    SafetensorsFile shard = byTensor.get(real);
    return shard == null ? Optional.empty() : shard.findTensor(real);
  }

  /** The tensor named {@code name}; missing is a {@link ModelFormatException}. */
  public SafetensorsTensor tensor(String name) throws ModelFormatException {
    return shardOf(name).tensor(resolve(name));
  }

  /** The shard holding {@code name}; missing is a {@link ModelFormatException}. */
  public SafetensorsFile shardOf(String name) throws ModelFormatException {
    SafetensorsFile shard = byTensor.get(resolve(name));
    if (shard == null) {
      throw new ModelFormatException(source, "no tensor named '" + name + "' in any shard");
    }
    return shard;
  }

  /** A zero-copy slice of the tensor's bytes in its shard. */
  public MemorySegment tensorData(String name) throws ModelFormatException {
    return shardOf(name).tensorData(resolve(name));
  }

  /** Closes every shard. */
  @Override
  public void close() {
    shards.forEach(SafetensorsFile::close);
  }
}
