package io.kvant.quant.artifact;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kvant.quant.artifact.Manifest.FileEntry;
import io.kvant.quant.artifact.Manifest.TensorEntry;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Reads and writes {@code manifest.json}, the one manifest schema ({@value Manifest#FORMAT}).
 *
 * <p>Versions: {@link #write} always writes {@value Manifest#FORMAT}. {@link #parse} reads it and
 * the two formats it replaced, which files in buckets and folders still carry: {@value #BUCKET_V1}
 * (the bucket's manifest, same fields under an older tag) and {@value #FOLDER_V1} (what {@code
 * kvant quantize} wrote: tag under {@code schema}, the recipe as a JSON object, no {@code
 * encodings} field; it is read as recipe "none" with {@code encodings.json} when listed). Any other
 * tag is refused naming it.
 *
 * <p>The manifest comes from outside (anyone who can write the bucket), so {@link #parse} checks
 * every bound before anything is allocated from it: total size, JSON nesting and string lengths
 * (Jackson read constraints), counts of files and tensors, name syntax (no path separators, no
 * {@code ..}), digest syntax, sizes and dimensions. Any violation is a {@link ManifestException}
 * naming the field; nothing else escapes (fuzzed in {@code ManifestCodecFuzzTest}).
 */
public final class ManifestCodec {
  /** Largest accepted manifest. */
  public static final int MAX_BYTES = 4 << 20;

  public static final int MAX_FILES = 4096;
  public static final int MAX_TENSORS = 1 << 16;
  public static final int MAX_RANK = 4;
  public static final long MAX_FILE_BYTES = 1L << 40;

  private static final Pattern ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,127}");
  private static final Pattern FILE = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,127}");
  private static final Pattern TENSOR = Pattern.compile("[A-Za-z0-9_][A-Za-z0-9._-]{0,255}");
  private static final Pattern SHA = Pattern.compile("[0-9a-f]{64}");
  private static final Set<String> DTYPES =
      java.util.Arrays.stream(io.kvant.engine.format.safetensors.SafetensorsDtype.values())
          .map(Enum::name)
          .collect(java.util.stream.Collectors.toUnmodifiableSet());

  /** The bucket manifest's tag before {@value Manifest#FORMAT}; read, never written. */
  public static final String BUCKET_V1 = "kvant.version/1";

  /** The quantize folder's tag before {@value Manifest#FORMAT}; read, never written. */
  public static final String FOLDER_V1 = "kvant.manifest/v1";

  private static final ObjectMapper JSON =
      new ObjectMapper(
              JsonFactory.builder()
                  .enable(com.fasterxml.jackson.core.StreamReadFeature.STRICT_DUPLICATE_DETECTION)
                  .streamReadConstraints(
                      StreamReadConstraints.builder()
                          .maxNestingDepth(16)
                          .maxStringLength(1 << 16)
                          .maxNumberLength(32)
                          .maxDocumentLength(MAX_BYTES)
                          .build())
                  .build())
          .enable(SerializationFeature.INDENT_OUTPUT);

  private ManifestCodec() {}

  /** Whether {@code s} is a valid version (or model) id. */
  public static boolean isId(String s) {
    return s != null && ID.matcher(s).matches() && !s.contains("..");
  }

  /** Whether {@code s} is a valid file name inside a version folder. */
  public static boolean isFileName(String s) {
    return s != null && FILE.matcher(s).matches() && !s.contains("..");
  }

  /**
   * Parses and checks a manifest.
   *
   * @throws ManifestException naming the field that is missing, malformed or out of bounds
   */
  public static Manifest parse(byte[] bytes) throws ManifestException {
    if (bytes.length > MAX_BYTES) {
      throw new ManifestException("manifest: " + bytes.length + " bytes, more than " + MAX_BYTES);
    }
    JsonNode root;
    try {
      root = JSON.readTree(bytes);
    } catch (JacksonException e) {
      throw new ManifestException("manifest: not valid JSON: " + e.getOriginalMessage());
    } catch (java.io.IOException | RuntimeException e) {
      throw new ManifestException("manifest: unreadable: " + e.getMessage());
    }
    if (root == null || !root.isObject()) {
      throw new ManifestException("manifest: the top level must be an object");
    }
    boolean folderV1 = !root.has("format") && root.has("schema");
    if (folderV1) {
      String schema = text(root, "schema");
      if (!schema.equals(FOLDER_V1)) {
        throw new ManifestException(
            "manifest.schema: expected '" + FOLDER_V1 + "', got '" + schema + "'");
      }
    } else {
      String format = text(root, "format");
      if (!format.equals(Manifest.FORMAT) && !format.equals(BUCKET_V1)) {
        throw new ManifestException(
            "manifest.format: expected '"
                + Manifest.FORMAT
                + "' (or the older '"
                + BUCKET_V1
                + "'), got '"
                + format
                + "'");
      }
    }
    String model = id(root, "model");
    String version = id(root, "version");
    Optional<String> parent = optionalText(root, "parent");
    if (parent.isPresent()) {
      if (!isId(parent.get())) {
        throw new ManifestException("manifest.parent: bad version id '" + parent.get() + "'");
      }
      if (parent.get().equals(version)) {
        throw new ManifestException("manifest.parent: a version cannot be its own parent");
      }
    }
    Instant created;
    try {
      created = Instant.parse(text(root, "created"));
    } catch (DateTimeParseException e) {
      throw new ManifestException("manifest.created: not an ISO-8601 instant");
    }
    String publisher = text(root, "publisher");
    if (publisher.length() > 256) {
      throw new ManifestException("manifest.publisher: longer than 256 characters");
    }
    // A folder-v1 recipe is the JSON of what made the codes; the codes are served as they are.
    String recipe = folderV1 ? "none" : text(root, "recipe");
    if (!isId(recipe)) {
      throw new ManifestException("manifest.recipe: bad recipe name '" + recipe + "'");
    }

    JsonNode filesNode = array(root, "files", MAX_FILES);
    List<FileEntry> files = new ArrayList<>();
    Set<String> fileNames = new HashSet<>();
    for (int i = 0; i < filesNode.size(); i++) {
      JsonNode f = object(filesNode.get(i), "files[" + i + "]");
      String where = "files[" + i + "]";
      String path = text(f, "path", where);
      if (!isFileName(path) || path.equals("manifest.json")) {
        throw new ManifestException(where + ".path: bad file name '" + path + "'");
      }
      if (!fileNames.add(path)) {
        throw new ManifestException(where + ".path: '" + path + "' listed twice");
      }
      long size = integer(f, "size", where, 0, MAX_FILE_BYTES);
      files.add(new FileEntry(path, size, sha(f, "sha256", where)));
    }

    JsonNode tensorsNode = array(root, "tensors", MAX_TENSORS);
    List<TensorEntry> tensors = new ArrayList<>();
    Set<String> tensorNames = new HashSet<>();
    for (int i = 0; i < tensorsNode.size(); i++) {
      String where = "tensors[" + i + "]";
      JsonNode t = object(tensorsNode.get(i), where);
      String name = text(t, "name", where);
      if (!TENSOR.matcher(name).matches()) {
        throw new ManifestException(where + ".name: bad tensor name");
      }
      if (!tensorNames.add(name)) {
        throw new ManifestException(where + ".name: '" + name + "' listed twice");
      }
      String file = text(t, "file", where);
      if (!fileNames.contains(file) || !file.endsWith(".safetensors")) {
        throw new ManifestException(
            where + ".file: '" + file + "' is not a listed .safetensors file");
      }
      String dtype = text(t, "dtype", where);
      if (!DTYPES.contains(dtype)) {
        throw new ManifestException(where + ".dtype: must be one of " + DTYPES + ", got " + dtype);
      }
      JsonNode shapeNode = t.get("shape");
      if (shapeNode == null || !shapeNode.isArray() || shapeNode.isEmpty()) {
        throw new ManifestException(where + ".shape: must be a non-empty array");
      }
      if (shapeNode.size() > MAX_RANK) {
        throw new ManifestException(where + ".shape: rank above " + MAX_RANK);
      }
      List<Long> shape = new ArrayList<>();
      long elements = 1;
      for (int d = 0; d < shapeNode.size(); d++) {
        JsonNode dim = shapeNode.get(d);
        if (!dim.canConvertToLong() || !dim.isIntegralNumber()) {
          throw new ManifestException(where + ".shape[" + d + "]: must be an integer");
        }
        long v = dim.asLong();
        if (v < 1 || v > Integer.MAX_VALUE) {
          throw new ManifestException(where + ".shape[" + d + "]: must be in [1, 2^31-1]");
        }
        elements = Math.multiplyHigh(elements, v) != 0 ? Long.MAX_VALUE : elements * v;
        if (elements > MAX_FILE_BYTES) {
          throw new ManifestException(where + ".shape: too many elements");
        }
        shape.add(v);
      }
      tensors.add(new TensorEntry(name, file, dtype, shape, sha(t, "sha256", where)));
    }
    Optional<String> encodings =
        folderV1
            ? Optional.of(QuantizedArtifact.ENCODINGS).filter(fileNames::contains)
            : optionalFile(root, "encodings", fileNames);
    Optional<String> calibration = optionalFile(root, "calibration", fileNames);
    if (parent.isEmpty() && tensors.isEmpty()) {
      throw new ManifestException("manifest.tensors: a full version must list its tensors");
    }
    return new Manifest(
        model, version, parent, created, publisher, recipe, files, tensors, encodings, calibration);
  }

  /** The manifest as UTF-8 JSON, with a stable field order. */
  public static byte[] write(Manifest m) {
    ObjectNode root = JSON.createObjectNode();
    root.put("format", Manifest.FORMAT);
    root.put("model", m.model());
    root.put("version", m.version());
    m.parent().ifPresent(p -> root.put("parent", p));
    root.put("created", m.created().toString());
    root.put("publisher", m.publisher());
    root.put("recipe", m.recipe());
    ArrayNode files = root.putArray("files");
    for (FileEntry f : m.files()) {
      files.addObject().put("path", f.path()).put("size", f.size()).put("sha256", f.sha256());
    }
    ArrayNode tensors = root.putArray("tensors");
    for (TensorEntry t : m.tensors()) {
      ObjectNode o = tensors.addObject();
      o.put("name", t.name()).put("file", t.file()).put("dtype", t.dtype());
      ArrayNode shape = o.putArray("shape");
      t.shape().forEach(shape::add);
      o.put("sha256", t.sha256());
    }
    m.encodings().ifPresent(e -> root.put("encodings", e));
    m.calibration().ifPresent(c -> root.put("calibration", c));
    try {
      return JSON.writeValueAsBytes(root);
    } catch (JacksonException e) {
      throw new IllegalStateException(e);
    }
  }

  private static JsonNode object(JsonNode n, String where) throws ManifestException {
    if (n == null || !n.isObject()) {
      throw new ManifestException(where + ": must be an object");
    }
    return n;
  }

  private static JsonNode array(JsonNode root, String key, int max) throws ManifestException {
    JsonNode n = root.get(key);
    if (n == null || !n.isArray()) {
      throw new ManifestException("manifest." + key + ": must be an array");
    }
    if (n.size() > max) {
      throw new ManifestException("manifest." + key + ": more than " + max + " entries");
    }
    return n;
  }

  private static String text(JsonNode n, String key) throws ManifestException {
    return text(n, key, "manifest");
  }

  private static String text(JsonNode n, String key, String where) throws ManifestException {
    JsonNode v = n.get(key);
    if (v == null || !v.isTextual()) {
      throw new ManifestException(where + "." + key + ": missing or not a string");
    }
    return v.textValue();
  }

  private static Optional<String> optionalText(JsonNode n, String key) throws ManifestException {
    JsonNode v = n.get(key);
    if (v == null || v.isNull()) {
      return Optional.empty();
    }
    if (!v.isTextual()) {
      throw new ManifestException("manifest." + key + ": not a string");
    }
    return Optional.of(v.textValue());
  }

  private static Optional<String> optionalFile(JsonNode n, String key, Set<String> files)
      throws ManifestException {
    Optional<String> v = optionalText(n, key);
    if (v.isPresent() && !files.contains(v.get())) {
      throw new ManifestException("manifest." + key + ": '" + v.get() + "' is not a listed file");
    }
    return v;
  }

  private static String id(JsonNode n, String key) throws ManifestException {
    String v = text(n, key);
    if (!isId(v)) {
      throw new ManifestException("manifest." + key + ": bad id '" + v + "'");
    }
    return v;
  }

  private static long integer(JsonNode n, String key, String where, long min, long max)
      throws ManifestException {
    JsonNode v = n.get(key);
    if (v == null || !v.isIntegralNumber() || !v.canConvertToLong()) {
      throw new ManifestException(where + "." + key + ": missing or not an integer");
    }
    long x = v.asLong();
    if (x < min || x > max) {
      throw new ManifestException(where + "." + key + ": must be in [" + min + ", " + max + "]");
    }
    return x;
  }

  private static String sha(JsonNode n, String key, String where) throws ManifestException {
    String v = text(n, key, where);
    if (!SHA.matcher(v).matches()) {
      throw new ManifestException(where + "." + key + ": must be 64 lower-case hex digits");
    }
    return v;
  }
}
