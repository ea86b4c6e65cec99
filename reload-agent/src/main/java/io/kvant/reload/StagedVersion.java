package io.kvant.reload;

import io.kvant.engine.model.ModelWeights;
import java.util.Map;

/**
 * A version that passed verification, recalibration and the gate, ready to be swapped in.
 *
 * @param id version id
 * @param parent parent version of a delta, "" for a full version
 * @param recipe quantization recipe
 * @param digest sha256 of its manifest
 * @param weights the tensors to serve; every unchanged one is the very object the base version
 *     serves (copy-on-write)
 * @param recalibrated tensors re-quantized for it
 * @param changed tensors whose content differs from the base version
 * @param figures gate and timing figures (for events)
 */
public record StagedVersion(
    String id,
    String parent,
    String recipe,
    String digest,
    ModelWeights weights,
    int recalibrated,
    int changed,
    Map<String, String> figures) {}
