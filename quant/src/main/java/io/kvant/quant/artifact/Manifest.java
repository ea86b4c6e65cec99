package io.kvant.quant.artifact;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * The commit record of one model version ({@code manifest.json}, written last): the one schema
 * ({@value #FORMAT}) for what {@code kvant quantize} writes, what {@code agent publish} uploads to
 * {@code <model>/versions/<version>/}, what the reload agent downloads and what {@code --model DIR}
 * loads. Immutable; built by {@link ManifestCodec#parse} (which checks every bound, and reads the
 * two older formats too) or by a writer.
 *
 * @param model model folder name in the bucket
 * @param version version id (also its folder name)
 * @param parent parent version for a delta (only changed tensors are in the files); empty for a
 *     full version
 * @param created publication time; "newest" means the latest {@code created}
 * @param publisher who published it (free text, e.g. a CI job or an e-mail)
 * @param recipe quantization recipe the agent applies on arrival ("none" keeps the tensors as
 *     published; a pre-quantized folder says "none" and keeps the recipe it was made with in its
 *     QBOM)
 * @param files every file of the version with its size and sha256
 * @param tensors every tensor in the safetensors files, with its digest
 * @param encodings file name of AIMET encodings, if any
 * @param calibration file name of calibration prompts (JSON lines), if any
 */
public record Manifest(
    String model,
    String version,
    Optional<String> parent,
    Instant created,
    String publisher,
    String recipe,
    List<FileEntry> files,
    List<TensorEntry> tensors,
    Optional<String> encodings,
    Optional<String> calibration) {

  /** Format tag written in every manifest. */
  public static final String FORMAT = "kvant.manifest/2";

  /** The manifest's file name inside a version folder. */
  public static final String FILE_NAME = "manifest.json";

  public Manifest {
    Objects.requireNonNull(model, "model");
    Objects.requireNonNull(version, "version");
    Objects.requireNonNull(created, "created");
    files = List.copyOf(files);
    tensors = List.copyOf(tensors);
  }

  /** Whether this version carries only the tensors that changed from {@link #parent}. */
  public boolean isDelta() {
    return parent.isPresent();
  }

  /** The file entry called {@code path}, if listed. */
  public Optional<FileEntry> file(String path) {
    return files.stream().filter(f -> f.path().equals(path)).findFirst();
  }

  /**
   * Reads and checks {@code dir/manifest.json}.
   *
   * @throws ArtifactException when it is missing or malformed (the message names the field)
   */
  public static Manifest read(Path dir) throws IOException {
    Path file = dir.resolve(FILE_NAME);
    if (!Files.isRegularFile(file)) {
      throw new ArtifactException(dir + ": no " + FILE_NAME + " (an incomplete version)");
    }
    try {
      return ManifestCodec.parse(Files.readAllBytes(file));
    } catch (ManifestException e) {
      throw new ArtifactException(file + ": " + e.getMessage(), e);
    }
  }

  /** Writes {@code dir/manifest.json} atomically (temp file, then move), readable by all. */
  public void write(Path dir) throws IOException {
    Path tmp = Files.createTempFile(dir, "manifest", ".tmp");
    try {
      Files.write(tmp, ManifestCodec.write(this));
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
      verify(dir, f);
    }
  }

  /**
   * Checks one listed file of {@code dir}: present, of the listed size, with the listed sha256.
   *
   * @throws ArtifactException naming the file when it does not match
   */
  public static void verify(Path dir, FileEntry f) throws IOException {
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

  /**
   * One file.
   *
   * @param path file name inside the version folder
   * @param size bytes
   * @param sha256 lower-case hex digest of the content
   */
  public record FileEntry(String path, long size, String sha256) {}

  /**
   * One tensor of a safetensors file.
   *
   * @param name kvant (GGUF-style) tensor name, e.g. {@code blk.0.attn_q.weight}
   * @param file the safetensors file holding it
   * @param dtype safetensors dtype as the file spells it (F32, F16, BF16 for full precision; I8,
   *     U8, F8_E4M3... for the codes of a pre-quantized folder)
   * @param shape dimensions, outermost first ([rows, cols] for a matrix, [n] for a vector)
   * @param sha256 lower-case hex digest of the tensor's raw bytes in that file
   */
  public record TensorEntry(
      String name, String file, String dtype, List<Long> shape, String sha256) {
    public TensorEntry {
      shape = List.copyOf(shape);
    }
  }
}
