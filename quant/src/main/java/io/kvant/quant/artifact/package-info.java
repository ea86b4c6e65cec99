/**
 * Model version artifacts: {@link io.kvant.quant.artifact.Manifest} ({@code manifest.json}: files
 * with size and sha256, tensors with digests, parent version, recipe, publisher), {@link
 * io.kvant.quant.artifact.Qbom} ({@code qbom.json}), {@link io.kvant.quant.artifact.Digests}, and
 * the quantized version folder ({@link io.kvant.quant.artifact.QuantizedArtifact}: write, verify,
 * load). No threads, no network: the reload agent moves these folders between buckets and calls
 * {@link io.kvant.quant.artifact.Manifest#verify} and {@link
 * io.kvant.quant.artifact.QuantizedArtifact#load}.
 */
package io.kvant.quant.artifact;
