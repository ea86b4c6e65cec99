package io.kvant.quant.quantize;

import io.kvant.engine.model.Model;
import io.kvant.quant.artifact.QbomEntry;
import io.kvant.quant.artifact.QuantizedArtifact;
import io.kvant.quant.encoding.TensorEncoding;
import java.util.List;
import java.util.Map;

/**
 * The result of {@link Quantizer#quantize}: the quantized model (sharing unchanged full-precision
 * tensors with the source, which must stay open while it is used), the recipe, the encodings of
 * every INT8/INT4/FP8 tensor by name, and the QBOM records of every tensor.
 */
public record QuantizedModel(
    Model model,
    Recipe recipe,
    Map<String, TensorEncoding> encodings,
    List<QbomEntry> qbom,
    java.time.Instant time,
    String publisher) {
  public QuantizedModel {
    encodings = Map.copyOf(encodings);
    qbom = List.copyOf(qbom);
  }

  /** What {@link QuantizedArtifact#write} writes of it. */
  public QuantizedArtifact.Contents contents() {
    return new QuantizedArtifact.Contents(model, recipe.name(), encodings, qbom, time, publisher);
  }
}
