package io.kvant.reload;

import io.kvant.engine.format.safetensors.SafetensorsFile;
import io.kvant.engine.format.safetensors.SafetensorsReader;
import io.kvant.engine.format.safetensors.SafetensorsTensor;
import io.kvant.quant.artifact.Digests;
import io.kvant.quant.artifact.Manifest;
import io.kvant.quant.artifact.Manifest.TensorEntry;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads the verified files of a version into full-precision values, checking each tensor against
 * the manifest (present, dtype, shape, sha256 of its bytes) and against the model (a known name,
 * the model's shape), and that no value is NaN or infinite. Every tensor of a safetensors file must
 * be listed in the manifest. Values are copied to the heap, so the staging files can go.
 */
final class VersionReader {
  private static final java.util.List<String> FULL_PRECISION =
      java.util.List.of("F32", "F16", "BF16");

  private VersionReader() {}

  /** Published values by tensor name: a {@code Tensor} (F32, heap) or a {@code float[]}. */
  static Map<String, Object> read(Manifest m, Path dir, WeightSlots slots) throws Rejection {
    Map<String, List<TensorEntry>> byFile = new HashMap<>();
    for (TensorEntry t : m.tensors()) {
      byFile.computeIfAbsent(t.file(), k -> new java.util.ArrayList<>()).add(t);
    }
    Map<String, Object> out = new LinkedHashMap<>();
    for (var e : byFile.entrySet()) {
      try (SafetensorsFile f = SafetensorsReader.open(dir.resolve(e.getKey()))) {
        Set<String> listed = new HashSet<>();
        for (TensorEntry t : e.getValue()) {
          listed.add(t.name());
          out.put(t.name(), readTensor(f, t, slots));
        }
        for (String name : f.tensorNames()) {
          if (!listed.contains(name)) {
            throw new Rejection(
                Rejection.Reason.BAD_TENSOR,
                e.getKey() + ": tensor " + name + " is not listed in the manifest");
          }
        }
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

  private static Object readTensor(SafetensorsFile f, TensorEntry t, WeightSlots slots)
      throws Rejection, IOException {
    if (!FULL_PRECISION.contains(t.dtype())) {
      // The manifest schema lists a pre-quantized folder's codes too; the agent loads full
      // precision plus encodings (`agent publish` converts a quantize folder into that).
      throw new Rejection(
          Rejection.Reason.BAD_TENSOR,
          t.name()
              + ": dtype "
              + t.dtype()
              + " is pre-quantized; a bucket version carries "
              + FULL_PRECISION
              + " tensors plus encodings");
    }
    WeightSlots.Slot slot = slots.slot(t.name());
    if (slot == null) {
      throw new Rejection(Rejection.Reason.BAD_TENSOR, t.name() + ": not a tensor of this model");
    }
    long[] shape = t.shape().stream().mapToLong(Long::longValue).toArray();
    if (!Arrays.equals(shape, slot.shape())) {
      throw new Rejection(
          Rejection.Reason.SHAPE_MISMATCH,
          t.name()
              + ": shape "
              + Arrays.toString(shape)
              + ", the model needs "
              + Arrays.toString(slot.shape()));
    }
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
    if (!Arrays.equals(st.shape(), shape)) {
      throw new Rejection(
          Rejection.Reason.SHAPE_MISMATCH,
          t.name()
              + ": shape "
              + Arrays.toString(st.shape())
              + " in the file, the manifest says "
              + Arrays.toString(shape));
    }
    MemorySegment data = f.tensorData(t.name());
    String sha = Digests.sha256(data);
    if (!sha.equals(t.sha256())) {
      throw new Rejection(
          Rejection.Reason.DIGEST_MISMATCH,
          t.name() + ": sha256 " + sha + ", the manifest says " + t.sha256());
    }
    int count = Math.toIntExact(st.elementCount());
    float[] v = TensorData.decode(data, t.dtype(), count);
    int bad = TensorData.firstNonFinite(v);
    if (bad >= 0) {
      throw new Rejection(
          Rejection.Reason.NON_FINITE,
          t.name() + ": element " + bad + " is " + v[bad] + " (NaN or infinite)");
    }
    return slot.matrix() ? TensorData.f32(v, (int) shape[0], (int) shape[1]) : v;
  }
}
