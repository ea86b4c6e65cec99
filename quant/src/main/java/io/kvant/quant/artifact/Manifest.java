package io.kvant.quant.artifact;

import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * {@code manifest.json} of a model version folder ({@code <bucket>/<model>/versions/<version>/}):
 * the commit point of a version, written last. Lists every other file of the folder with size and
 * sha256, every tensor with the file it lives in, dtype, shape and sha256 of its bytes, the parent
 * version (for deltas), the quantization recipe and the publisher.
 *
 * <pre>{@code
 * {"schema": "kvant.manifest/v1", "model": "stories260K", "version": "v1", "parent": null,
 *  "publisher": "ci@example", "created": "2025-01-01T00:00:00Z", "recipe": {...},
 *  "files": [{"path": "model.safetensors", "size": 123, "sha256": "..."}, ...],
 *  "tensors": [{"name": "blk.0.attn_q.weight", "file": "model.safetensors", "dtype": "I4",
 *               "shape": [64, 32], "sha256": "..."}, ...]}
 * }</pre>
 *
 * <p>Validation ({@link #parse}): required fields present and typed, file paths relative without
 * {@code ..}, unique, sha256 as 64 lower-case hex digits, sizes non-negative, tensor names unique
 * and their files listed. {@link #verify} then checks a folder's files against it.
 *
 * @param recipe the recipe as JSON text ({@code "null"} when none)
 */
public record Manifest(
    String model,
    String version,
    String parent,
    String publisher,
    Instant created,
    String recipe,
    List<FileEntry> files,
    List<TensorEntry> tensors) {
  public static final String SCHEMA = "kvant.manifest/v1";
  public static final String FILE_NAME = "manifest.json";

  /** One file of the version folder. */
  public record FileEntry(String path, long size, String sha256) {}

  /** One tensor: its name, the file holding it, dtype (as that file spells it), shape, digest. */
  public record TensorEntry(String name, String file, String dtype, long[] shape, String sha256) {
    @Override
    public boolean equals(Object o) {
      return o instanceof TensorEntry t
          && name.equals(t.name)
          && file.equals(t.file)
          && dtype.equals(t.dtype)
          && java.util.Arrays.equals(shape, t.shape)
          && sha256.equals(t.sha256);
    }

    @Override
    public int hashCode() {
      return name.hashCode() * 31 + sha256.hashCode();
    }
  }

  private static final Pattern HEX64 = Pattern.compile("[0-9a-f]{64}");
  private static final ObjectMapper JSON =
      JsonMapper.builder().enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION).build();

  public Manifest {
    files = List.copyOf(files);
    tensors = List.copyOf(tensors);
    check(model != null && !model.isBlank(), "'model' must be a non-empty string");
    check(version != null && !version.isBlank(), "'version' must be a non-empty string");
    check(created != null, "'created' is required");
    Set<String> paths = new HashSet<>();
    for (FileEntry f : files) {
      check(f.path() != null && isSafeRelative(f.path()), "bad file path '" + f.path() + "'");
      check(paths.add(f.path()), "file '" + f.path() + "' listed twice");
      check(f.size() >= 0, "file '" + f.path() + "' has a negative size");
      check(
          f.sha256() != null && HEX64.matcher(f.sha256()).matches(),
          "file '" + f.path() + "' needs a sha256 of 64 hex digits");
    }
    Set<String> names = new HashSet<>();
    for (TensorEntry t : tensors) {
      check(
          t.name() != null && names.add(t.name()),
          "tensor '" + t.name() + "' listed twice or unnamed");
      check(
          paths.contains(t.file()),
          "tensor '" + t.name() + "' is in unlisted file '" + t.file() + "'");
      check(
          t.sha256() != null && HEX64.matcher(t.sha256()).matches(),
          "tensor '" + t.name() + "' needs a sha256 of 64 hex digits");
    }
  }

  private static boolean isSafeRelative(String p) {
    if (p.isEmpty() || p.startsWith("/") || p.contains("\\") || p.equals(FILE_NAME)) {
      return false;
    }
    for (String part : p.split("/")) {
      if (part.isEmpty() || part.equals("..") || part.equals(".")) {
        return false;
      }
    }
    return true;
  }

  private static void check(boolean ok, String msg) {
    if (!ok) {
      throw new IllegalArgumentException("manifest: " + msg);
    }
  }

  /** The file entry for {@code path}, if listed. */
  public java.util.Optional<FileEntry> file(String path) {
    return files.stream().filter(f -> f.path().equals(path)).findFirst();
  }

  /** The JSON document. */
  public String toJson() {
    ObjectNode root = JSON.createObjectNode();
    root.put("schema", SCHEMA);
    root.put("model", model);
    root.put("version", version);
    if (parent == null) {
      root.putNull("parent");
    } else {
      root.put("parent", parent);
    }
    root.put("publisher", publisher);
    root.put("created", created.toString());
    try {
      root.set("recipe", JSON.readTree(recipe == null ? "null" : recipe));
    } catch (IOException e) {
      throw new IllegalArgumentException("manifest: recipe is not JSON", e);
    }
    ArrayNode fa = root.putArray("files");
    for (FileEntry f : files) {
      fa.addObject().put("path", f.path()).put("size", f.size()).put("sha256", f.sha256());
    }
    ArrayNode ta = root.putArray("tensors");
    for (TensorEntry t : tensors) {
      ObjectNode o = ta.addObject();
      o.put("name", t.name()).put("file", t.file()).put("dtype", t.dtype());
      ArrayNode s = o.putArray("shape");
      for (long d : t.shape()) {
        s.add(d);
      }
      o.put("sha256", t.sha256());
    }
    try {
      return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * Parses and validates a manifest.
   *
   * @throws IllegalArgumentException naming the problem
   */
  public static Manifest parse(String json) {
    JsonNode root;
    try {
      root = JSON.readTree(json);
    } catch (IOException e) {
      throw new IllegalArgumentException("manifest: not valid JSON: " + e.getMessage(), e);
    }
    check(root != null && root.isObject(), "must be a JSON object");
    check(SCHEMA.equals(root.path("schema").asText()), "schema must be '" + SCHEMA + "'");
    Instant created;
    try {
      created = Instant.parse(str(root, "created"));
    } catch (DateTimeParseException e) {
      throw new IllegalArgumentException("manifest: 'created' is not an ISO-8601 instant");
    }
    List<FileEntry> files = new ArrayList<>();
    JsonNode fa = root.path("files");
    check(fa.isArray(), "'files' must be a list");
    for (JsonNode f : fa) {
      check(f.path("size").isIntegralNumber(), "file size must be an integer");
      files.add(new FileEntry(str(f, "path"), f.get("size").asLong(), str(f, "sha256")));
    }
    List<TensorEntry> tensors = new ArrayList<>();
    JsonNode ta = root.path("tensors");
    check(ta.isArray(), "'tensors' must be a list");
    for (JsonNode t : ta) {
      JsonNode sh = t.path("shape");
      check(sh.isArray(), "tensor shape must be a list");
      long[] shape = new long[sh.size()];
      for (int i = 0; i < shape.length; i++) {
        check(
            sh.get(i).isIntegralNumber() && sh.get(i).asLong() >= 0,
            "tensor shape must hold non-negative integers");
        shape[i] = sh.get(i).asLong();
      }
      tensors.add(
          new TensorEntry(
              str(t, "name"), str(t, "file"), str(t, "dtype"), shape, str(t, "sha256")));
    }
    JsonNode parent = root.get("parent");
    return new Manifest(
        str(root, "model"),
        str(root, "version"),
        parent == null || parent.isNull() ? null : parent.asText(),
        root.path("publisher").asText(""),
        created,
        root.path("recipe").toString(),
        files,
        tensors);
  }

  private static String str(JsonNode n, String key) {
    JsonNode v = n.get(key);
    check(v != null && v.isTextual(), "'" + key + "' must be a string");
    return v.asText();
  }

  /** Reads and validates {@code dir/manifest.json}. */
  public static Manifest read(Path dir) throws IOException {
    Path file = dir.resolve(FILE_NAME);
    if (!Files.isRegularFile(file)) {
      throw new ArtifactException(dir + ": no " + FILE_NAME + " (an incomplete version)");
    }
    try {
      return parse(Files.readString(file, StandardCharsets.UTF_8));
    } catch (IllegalArgumentException e) {
      throw new ArtifactException(file + ": " + e.getMessage(), e);
    }
  }

  /** Writes {@code dir/manifest.json} atomically (temp file, then move). */
  public void write(Path dir) throws IOException {
    Path tmp = Files.createTempFile(dir, "manifest", ".tmp");
    try {
      Files.writeString(tmp, toJson(), StandardCharsets.UTF_8);
      io.kvant.engine.format.FileModes.readableByAll(tmp);
      Files.move(
          tmp,
          dir.resolve(FILE_NAME),
          StandardCopyOption.REPLACE_EXISTING,
          StandardCopyOption.ATOMIC_MOVE);
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  /**
   * Checks every listed file of {@code dir}: present, of the listed size, with the listed sha256.
   *
   * @throws ArtifactException naming the first file that does not match
   */
  public void verify(Path dir) throws IOException {
    for (FileEntry f : files) {
      Path p = dir.resolve(f.path());
      if (!Files.isRegularFile(p)) {
        throw new ArtifactException(dir + ": listed file '" + f.path() + "' is missing");
      }
      long size = Files.size(p);
      if (size != f.size()) {
        throw new ArtifactException(
            dir + ": '" + f.path() + "' is " + size + " bytes, manifest says " + f.size());
      }
      String digest = Digests.sha256(p);
      if (!digest.equals(f.sha256())) {
        throw new ArtifactException(
            dir + ": sha256 of '" + f.path() + "' is " + digest + ", manifest says " + f.sha256());
      }
    }
  }
}
