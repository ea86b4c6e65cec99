package io.kvant.reload;

import io.kvant.engine.format.safetensors.SafetensorsFile;
import io.kvant.engine.format.safetensors.SafetensorsReader;
import io.kvant.engine.format.safetensors.SafetensorsTensor;
import io.kvant.engine.model.Weight;
import io.kvant.engine.model.WeightLayout;
import io.kvant.engine.tensor.Tensor;
import io.kvant.quant.artifact.Digests;
import io.kvant.quant.artifact.KvCalibrationFile;
import io.kvant.quant.artifact.Manifest;
import io.kvant.quant.artifact.Manifest.TensorEntry;
import io.kvant.quant.artifact.QuantizedLayout;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Reads the verified files of a version into weights, checking each tensor against the manifest
 * (present, dtype, shape, sha256 of its bytes) and against the model (a known name, the model's
 * shape), and that no value is NaN or infinite. A matrix is either full precision (F32, F16, BF16;
 * read as F32) or pre-quantized as {@code kvant quantize} writes it (codes plus {@code NAME.scale}
 * / {@code NAME.zero} companions, described by the file's {@code kvant.layout} metadata; kept as it
 * is). Every tensor of a safetensors file must be listed in the manifest. Values are copied to the
 * heap, so the staging files can go. A {@value KvCalibrationFile#FILE_NAME} is checked, not read
 * into weights.
 */
final class VersionReader {
  private static final List<String> FULL_PRECISION = List.of("F32", "F16", "BF16");

  private VersionReader() {}

  /** Published weights by tensor name. */
  static Map<String, Weight> read(Manifest m, Path dir, WeightLayout slots) throws Rejection {
    Map<String, List<TensorEntry>> byFile = new LinkedHashMap<>();
    for (TensorEntry t : m.tensors()) {
      byFile.computeIfAbsent(t.file(), k -> new ArrayList<>()).add(t);
    }
    Map<String, Weight> out = new LinkedHashMap<>();
    String kvFile = KvCalibrationFile.FILE_NAME;
    if (byFile.containsKey(kvFile) || m.file(kvFile).isPresent()) {
      checkKvCalibration(dir, byFile.getOrDefault(kvFile, List.of()), slots);
    }
    for (var e : byFile.entrySet()) {
      if (e.getKey().equals(kvFile)) {
        continue;
      }
      try (SafetensorsFile f = SafetensorsReader.open(dir.resolve(e.getKey()))) {
        readFile(f, e.getKey(), e.getValue(), slots, out);
      } catch (IOException ex) {
        throw new Rejection(Rejection.Reason.BAD_TENSOR, e.getKey() + ": " + ex.getMessage(), ex);
      }
    }
    if (!m.isDelta()) {
      for (String name : slots.all().keySet()) {
        if (!out.containsKey(name)) {
          throw new Rejection(
              Rejection.Reason.BAD_TENSOR, "full version " + m.version() + " lacks tensor " + name);
        }
      }
    }
    return out;
  }

  /**
   * A {@value KvCalibrationFile#FILE_NAME} (a {@code kvant quantize} folder's KV statistics): its
   * tensors are checked against the manifest like the weights' and its content against the model
   * ({@link KvCalibrationFile#read}), but it yields no weights. A running server never reads it
   * (its KV pool keeps the statistics it started with); checking it here keeps a bucket free of
   * files a restarted server would refuse.
   */
  private static void checkKvCalibration(Path dir, List<TensorEntry> entries, WeightLayout slots)
      throws Rejection {
    String file = KvCalibrationFile.FILE_NAME;
    try (SafetensorsFile f = SafetensorsReader.open(dir.resolve(file))) {
      Set<String> listed = new HashSet<>();
      for (TensorEntry t : entries) {
        checked(f, t);
        listed.add(t.name());
      }
      for (String name : f.tensorNames()) {
        if (!listed.contains(name)) {
          throw new Rejection(
              Rejection.Reason.BAD_TENSOR,
              file + ": tensor " + name + " is not listed in the manifest");
        }
      }
      KvCalibrationFile.read(dir.resolve(file), slots.config());
    } catch (IOException ex) {
      // A format error's message already starts with the file's name.
      String why =
          ex instanceof io.kvant.engine.format.ModelFormatException
              ? ex.getMessage()
              : file + ": " + ex.getMessage();
      throw new Rejection(Rejection.Reason.BAD_TENSOR, why, ex);
    }
  }

  private static void readFile(
      SafetensorsFile f,
      String file,
      List<TensorEntry> entries,
      WeightLayout slots,
      Map<String, Weight> out)
      throws Rejection, IOException {
    Optional<QuantizedLayout> layout = QuantizedLayout.of(f);
    Map<String, TensorEntry> listed = new HashMap<>();
    for (TensorEntry t : entries) {
      listed.put(t.name(), t);
    }
    // The scales and zero points of pre-quantized matrices: read with their matrix.
    Set<String> companions = new HashSet<>();
    for (TensorEntry t : entries) {
      if (slots.slot(t.name()) != null && quantized(t) && layout.isPresent()) {
        companions.addAll(layout.get().companions(t.name()));
      }
    }
    for (TensorEntry t : entries) {
      WeightLayout.Slot slot = slots.slot(t.name());
      if (slot == null && !companions.contains(t.name())) {
        throw new Rejection(Rejection.Reason.BAD_TENSOR, t.name() + ": not a tensor of this model");
      }
      if (slot != null && !quantized(t)) {
        requireShape(t.name(), shapeOf(t), slot.shape(), "the model needs");
      }
      MemorySegment data = checked(f, t);
      if (slot == null) {
        continue;
      }
      Weight w = quantized(t) ? quantizedMatrix(f, layout, t, slot) : fullPrecision(data, t, slot);
      out.put(t.name(), w);
    }
    for (String name : f.tensorNames()) {
      if (!listed.containsKey(name)) {
        throw new Rejection(
            Rejection.Reason.BAD_TENSOR,
            file + ": tensor " + name + " is not listed in the manifest");
      }
    }
  }

  private static boolean quantized(TensorEntry t) {
    return !FULL_PRECISION.contains(t.dtype());
  }

  private static long[] shapeOf(TensorEntry t) {
    return t.shape().stream().mapToLong(Long::longValue).toArray();
  }

  private static void requireShape(String name, long[] got, long[] want, String who)
      throws Rejection {
    if (!Arrays.equals(got, want)) {
      throw new Rejection(
          Rejection.Reason.SHAPE_MISMATCH,
          name + ": shape " + Arrays.toString(got) + ", " + who + " " + Arrays.toString(want));
    }
  }

  /** The entry's bytes, after checking them against the manifest (dtype, shape, sha256). */
  private static MemorySegment checked(SafetensorsFile f, TensorEntry t)
      throws Rejection, IOException {
    SafetensorsTensor st =
        f.findTensor(t.name())
            .orElseThrow(
                () ->
                    new Rejection(
                        Rejection.Reason.BAD_TENSOR, t.file() + ": no tensor " + t.name()));
    if (!st.dtype().name().equals(t.dtype())) {
      throw new Rejection(
          Rejection.Reason.BAD_TENSOR,
          t.name() + ": dtype " + st.dtype() + ", the manifest says " + t.dtype());
    }
    if (!Arrays.equals(st.shape(), shapeOf(t))) {
      throw new Rejection(
          Rejection.Reason.SHAPE_MISMATCH,
          t.name()
              + ": shape "
              + Arrays.toString(st.shape())
              + " in the file, the manifest says "
              + Arrays.toString(shapeOf(t)));
    }
    MemorySegment data = f.tensorData(t.name());
    String sha = Digests.sha256(data);
    if (!sha.equals(t.sha256())) {
      throw new Rejection(
          Rejection.Reason.DIGEST_MISMATCH,
          t.name() + ": sha256 " + sha + ", the manifest says " + t.sha256());
    }
    return data;
  }

  private static Weight fullPrecision(MemorySegment data, TensorEntry t, WeightLayout.Slot slot)
      throws Rejection {
    long[] shape = slot.shape();
    int count = Math.toIntExact(Arrays.stream(shape).reduce(1, Math::multiplyExact));
    float[] v = TensorData.decode(data, t.dtype(), count);
    requireFinite(t.name(), v);
    return slot.matrix()
        ? new Weight.Matrix(TensorData.f32(v, slot.rows(), slot.cols()))
        : new Weight.Vector(v);
  }

  private static Weight quantizedMatrix(
      SafetensorsFile f, Optional<QuantizedLayout> layout, TensorEntry t, WeightLayout.Slot slot)
      throws Rejection, IOException {
    if (!slot.matrix() || layout.isEmpty() || !layout.get().describes(t.name())) {
      throw new Rejection(
          Rejection.Reason.BAD_TENSOR,
          t.name()
              + ": dtype "
              + t.dtype()
              + " is not full precision "
              + FULL_PRECISION
              + " and the file's kvant.layout does not describe it as a quantized matrix");
    }
    // Scales first: a NaN or infinite scale is a non-finite value, as in a full-precision tensor.
    for (String c : layout.get().companions(t.name())) {
      SafetensorsTensor st = f.tensor(c);
      if (st.dtype().name().equals("F32")) {
        MemorySegment data = f.tensorData(c);
        requireFinite(c, TensorData.decode(data, "F32", Math.toIntExact(data.byteSize() / 4)));
      }
    }
    Tensor q;
    try {
      q = layout.get().matrix(t.name(), true);
    } catch (IOException e) {
      throw new Rejection(Rejection.Reason.BAD_TENSOR, t.name() + ": " + e.getMessage(), e);
    }
    requireShape(t.name(), new long[] {q.rows(), q.cols()}, slot.shape(), "the model needs");
    float[] row = new float[q.cols()];
    for (int r = 0; r < q.rows(); r++) {
      q.dequantizeRow(r, row, 0);
      int bad = TensorData.firstNonFinite(row);
      if (bad >= 0) {
        throw new Rejection(
            Rejection.Reason.NON_FINITE,
            t.name()
                + ": element "
                + ((long) r * q.cols() + bad)
                + " is "
                + row[bad]
                + " (NaN or infinite)");
      }
    }
    return new Weight.Matrix(q);
  }

  private static void requireFinite(String name, float[] v) throws Rejection {
    int bad = TensorData.firstNonFinite(v);
    if (bad >= 0) {
      throw new Rejection(
          Rejection.Reason.NON_FINITE,
          name + ": element " + bad + " is " + v[bad] + " (NaN or infinite)");
    }
  }
}
