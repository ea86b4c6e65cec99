package io.kvant.reload;

import io.kvant.engine.format.safetensors.SafetensorsDtype;
import io.kvant.engine.format.safetensors.SafetensorsFile;
import io.kvant.engine.format.safetensors.SafetensorsReader;
import io.kvant.engine.format.safetensors.SafetensorsTensor;
import io.kvant.engine.format.safetensors.SafetensorsWriter;
import io.kvant.engine.model.Model;
import io.kvant.engine.tensor.Tensor;
import io.kvant.quant.artifact.Digests;
import io.kvant.reload.bucket.Bucket;
import io.kvant.reload.manifest.Manifest;
import io.kvant.reload.manifest.Manifest.FileEntry;
import io.kvant.reload.manifest.Manifest.TensorEntry;
import io.kvant.reload.manifest.ManifestCodec;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * Publishes a version folder to a bucket: computes the size and sha256 of every file and the digest
 * of every tensor, uploads the files, then the manifest last (the commit point), then the channel
 * pointer if asked.
 */
public final class Publisher {
  public static final String ENCODINGS = "encodings.json";
  public static final String CALIBRATION = "calibration.jsonl";

  private final Bucket bucket;
  private final Clock clock;

  public Publisher(Bucket bucket, Clock clock) {
    this.bucket = bucket;
    this.clock = clock;
  }

  /** A version id from the clock, e.g. {@code 2026-11-24T10-00-00Z}. */
  public String timestampId() {
    return DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH-mm-ss'Z'")
        .withZone(ZoneOffset.UTC)
        .format(clock.instant());
  }

  /**
   * Publishes the files of {@code dir} ({@code *.safetensors}, optional {@value #ENCODINGS} and
   * {@value #CALIBRATION}) as {@code model/versions/version}.
   *
   * @throws IOException for unreadable files or a failed upload (the version then has no manifest
   *     and stays invisible)
   * @throws IllegalArgumentException for a bad id or file name
   */
  public Manifest publish(
      String model,
      String version,
      Optional<String> parent,
      String recipe,
      String publisher,
      Path dir,
      Optional<String> channel)
      throws IOException {
    for (String id : new String[] {model, version, recipe}) {
      if (!ManifestCodec.isId(id)) {
        throw new IllegalArgumentException("'" + id + "' is not a valid id");
      }
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
    return m;
  }

  /** Points channel {@code name} at {@code version}. */
  public void promote(String model, String name, String version) throws IOException {
    if (!ManifestCodec.isId(name) || !ManifestCodec.isId(version)) {
      throw new IllegalArgumentException("bad channel or version id");
    }
    bucket.put(model + "/channels/" + name, (version + "\n").getBytes(StandardCharsets.UTF_8));
  }

  /**
   * Writes named full-precision values ({@link Tensor}s as F32 [rows, cols], {@code float[]} as F32
   * [n]) to one safetensors file.
   */
  public static void writeTensors(Path file, Map<String, ?> values) throws IOException {
    SafetensorsWriter w = new SafetensorsWriter();
    for (var e : values.entrySet()) {
      if (e.getValue() instanceof Tensor t) {
        w.add(
            e.getKey(),
            SafetensorsDtype.F32,
            new long[] {t.rows(), t.cols()},
            TensorData.f32Bytes(TensorData.values(t)));
      } else if (e.getValue() instanceof float[] v) {
        w.add(e.getKey(), SafetensorsDtype.F32, new long[] {v.length}, TensorData.f32Bytes(v));
      } else {
        throw new IllegalArgumentException(e.getKey() + ": not a tensor or vector");
      }
    }
    w.write(file);
  }

  /** Every weight of {@code model} by kvant tensor name (matrices and vectors). */
  public static Map<String, Object> tensorsOf(Model model) {
    return new WeightSlots(model.config(), model.weights()).explode(model.weights());
  }
}
