package io.kvant.reload.manifest;

import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * The commit record of one model version in a bucket ({@code
 * <model>/versions/<version>/manifest.json}, written last). Immutable; built by {@link
 * ManifestCodec#parse} (which checks every bound) or by a publisher.
 *
 * @param model model folder name in the bucket
 * @param version version id (also its folder name)
 * @param parent parent version for a delta (only changed tensors are in the files); empty for a
 *     full version
 * @param created publication time; "newest" means the latest {@code created}
 * @param publisher who published it (free text, e.g. a CI job or an e-mail)
 * @param recipe quantization recipe name ("none" keeps the tensors as published)
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
  public static final String FORMAT = "kvant.version/1";

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
   * @param dtype safetensors dtype (F32, F16, BF16)
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
