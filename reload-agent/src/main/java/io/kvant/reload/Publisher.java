package io.kvant.reload;

import io.kvant.engine.format.safetensors.SafetensorsDtype;
import io.kvant.engine.format.safetensors.SafetensorsFile;
import io.kvant.engine.format.safetensors.SafetensorsReader;
import io.kvant.engine.format.safetensors.SafetensorsTensor;
import io.kvant.engine.format.safetensors.SafetensorsWriter;
import io.kvant.engine.model.Model;
import io.kvant.engine.model.Weight;
import io.kvant.engine.model.WeightLayout;
import io.kvant.quant.artifact.Digests;
import io.kvant.quant.artifact.Manifest;
import io.kvant.quant.artifact.Manifest.FileEntry;
import io.kvant.quant.artifact.Manifest.TensorEntry;
import io.kvant.quant.artifact.ManifestCodec;
import io.kvant.reload.bucket.Bucket;
import io.kvant.reload.bucket.FileBucket;
import io.kvant.reload.bucket.OverlayBucket;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * Publishes a version folder to a bucket: computes the size and sha256 of every file and the digest
 * of every tensor, runs the server's own verification on the version ({@link VersionCheck}, over a
 * local copy, before anything is uploaded), uploads the files, then the manifest last (the commit
 * point), then the channel pointer if asked. A version a server would refuse is refused here with
 * the same {@link Rejection} and leaves nothing in the bucket.
 */
public final class Publisher {
  public static final String ENCODINGS = "encodings.json";
  public static final String CALIBRATION = "calibration.jsonl";

  private final Bucket bucket;
  private final Clock clock;
  private final Optional<VersionCheck> check;

  /** A publisher that verifies every version with {@code check} before uploading it. */
  public Publisher(Bucket bucket, Clock clock, VersionCheck check) {
    this(bucket, clock, Optional.of(check));
  }

  private Publisher(Bucket bucket, Clock clock, Optional<VersionCheck> check) {
    this.bucket = bucket;
    this.clock = clock;
    this.check = check;
  }

  /**
   * A publisher that uploads without verifying: for tests that must plant versions a server refuses
   * (to test that it does), never for {@code kvant agent publish}.
   */
  public static Publisher unverified(Bucket bucket, Clock clock) {
    return new Publisher(bucket, clock, Optional.empty());
  }

  /**
   * What was published.
   *
   * @param manifest the manifest written
   * @param verified what the verification staged (changed and re-quantized tensors, gate figures),
   *     empty for an {@link #unverified} publisher
   */
  public record Published(Manifest manifest, Optional<StagedVersion> verified) {}

  /** A version id from the clock, e.g. {@code 2026-11-24T10-00-00Z}. */
  public String timestampId() {
    return DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH-mm-ss'Z'")
        .withZone(ZoneOffset.UTC)
        .format(clock.instant());
  }

  /**
   * Publishes the files of {@code dir} ({@code *.safetensors}, optional {@value #ENCODINGS} and
   * {@value #CALIBRATION}, and whatever else the folder holds, e.g. a {@code kvant quantize}
   * folder's config, tokenizer and QBOM) as {@code model/versions/version}. The tensors are listed
   * as the files store them: full precision, or pre-quantized codes with their scales. A folder
   * with a {@code manifest.json} is first checked against it (sizes and sha256); the manifest
   * uploaded lists the same files and tensors under the given model, version, parent, recipe and
   * publisher.
   *
   * @throws Rejection when a server would refuse the version (nothing was uploaded)
   * @throws IOException for unreadable files or a failed upload (the version then has no manifest
   *     and stays invisible)
   * @throws IllegalArgumentException for a bad id or file name
   */
  public Published publish(
      String model,
      String version,
      Optional<String> parent,
      String recipe,
      String publisher,
      Path dir,
      Optional<String> channel)
      throws IOException, Rejection {
    for (String id : new String[] {model, version, recipe}) {
      if (!ManifestCodec.isId(id)) {
        throw new IllegalArgumentException("'" + id + "' is not a valid id");
      }
    }
    if (Files.isRegularFile(dir.resolve(Manifest.FILE_NAME))) {
      // A folder that has its manifest (what `kvant quantize` writes) is uploaded as it is: its
      // files must still be the ones that manifest lists.
      Manifest.read(dir).verify(dir);
    }
    List<Path> files;
    try (Stream<Path> s = Files.list(dir)) {
      files = s.filter(Files::isRegularFile).sorted().toList();
    }
    List<FileEntry> fileEntries = new ArrayList<>();
    List<TensorEntry> tensors = new ArrayList<>();
    Optional<String> encodings = Optional.empty();
    Optional<String> calibration = Optional.empty();
    for (Path f : files) {
      String name = f.getFileName().toString();
      if (name.equals("manifest.json")) {
        continue;
      }
      if (!ManifestCodec.isFileName(name)) {
        throw new IllegalArgumentException(f + ": file name not allowed in a version");
      }
      fileEntries.add(new FileEntry(name, Files.size(f), Digests.sha256(f)));
      if (name.endsWith(".safetensors")) {
        try (SafetensorsFile sf = SafetensorsReader.open(f)) {
          for (SafetensorsTensor t : sf.tensors()) {
            tensors.add(
                new TensorEntry(
                    t.name(),
                    name,
                    t.dtype().name(),
                    Arrays.stream(t.shape()).boxed().toList(),
                    Digests.sha256(sf.tensorData(t.name()))));
          }
        }
      } else if (name.equals(ENCODINGS)) {
        encodings = Optional.of(name);
      } else if (name.equals(CALIBRATION)) {
        calibration = Optional.of(name);
      }
    }
    Manifest m =
        new Manifest(
            model,
            version,
            parent,
            clock.instant(),
            publisher,
            recipe,
            fileEntries,
            tensors,
            encodings,
            calibration);
    String prefix = model + "/versions/" + version + "/";
    Optional<StagedVersion> verified = Optional.empty();
    if (check.isPresent()) {
      verified = Optional.of(verifyLocally(m, files, prefix));
    }
    for (Path f : files) {
      String name = f.getFileName().toString();
      if (!name.equals("manifest.json")) {
        bucket.put(prefix + name, f);
      }
    }
    bucket.put(prefix + "manifest.json", ManifestCodec.write(m));
    if (channel.isPresent()) {
      promote(model, channel.get(), version);
    }
    return new Published(m, verified);
  }

  /**
   * Stages the version in a temporary folder bucket laid over the real one (so a delta finds its
   * parent there) and runs the check on it.
   */
  private StagedVersion verifyLocally(Manifest m, List<Path> files, String prefix)
      throws IOException, Rejection {
    Path local = Files.createTempDirectory("kvant-publish-check");
    try {
      FileBucket folder = new FileBucket(local);
      for (Path f : files) {
        String name = f.getFileName().toString();
        if (!name.equals("manifest.json")) {
          folder.put(prefix + name, f);
        }
      }
      folder.put(prefix + "manifest.json", ManifestCodec.write(m));
      return check.get().verify(new OverlayBucket(folder, bucket, prefix), m.model(), m.version());
    } finally {
      try (Stream<Path> s = Files.walk(local)) {
        s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
      }
    }
  }

  /** Points channel {@code name} at {@code version}. */
  public void promote(String model, String name, String version) throws IOException {
    if (!ManifestCodec.isId(name) || !ManifestCodec.isId(version)) {
      throw new IllegalArgumentException("bad channel or version id");
    }
    bucket.put(model + "/channels/" + name, (version + "\n").getBytes(StandardCharsets.UTF_8));
  }

  /**
   * Writes named weights in full precision to one safetensors file: a matrix as F32 [rows, cols] (a
   * quantized one dequantized, exactly), a vector as F32 [n]. Matrices are dequantized a row at a
   * time as the file is written, so the heap holds one row, not the model in F32 (a 1B model's
   * embedding alone is 1 GB of floats).
   */
  public static void writeTensors(Path file, Map<String, Weight> values) throws IOException {
    SafetensorsWriter w = new SafetensorsWriter();
    for (var e : values.entrySet()) {
      switch (e.getValue()) {
        case Weight.Matrix m ->
            w.add(
                e.getKey(),
                SafetensorsDtype.F32,
                new long[] {m.tensor().rows(), m.tensor().cols()},
                out -> {
                  io.kvant.engine.tensor.Tensor t = m.tensor();
                  float[] row = new float[t.cols()];
                  ByteBuffer bytes =
                      ByteBuffer.allocate(4 * t.cols()).order(ByteOrder.LITTLE_ENDIAN);
                  for (int r = 0; r < t.rows(); r++) {
                    t.dequantizeRow(r, row, 0);
                    bytes.clear();
                    bytes.asFloatBuffer().put(row);
                    out.write(bytes);
                  }
                });
        case Weight.Vector v ->
            w.add(
                e.getKey(),
                SafetensorsDtype.F32,
                new long[] {v.values().length},
                TensorData.f32Bytes(v.values()));
      }
    }
    w.write(file);
  }

  /** Every weight of {@code model} by kvant tensor name (matrices and vectors). */
  public static Map<String, Weight> tensorsOf(Model model) {
    return WeightLayout.of(model).named(model.weights());
  }
}
