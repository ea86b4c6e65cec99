/**
 * Model version artifacts: {@link io.kvant.engine.artifact.Manifest} ({@code manifest.json}: files
 * with size and sha256, tensors with digests, parent version, recipe, publisher), {@link
 * io.kvant.engine.artifact.Qbom} ({@code qbom.json}), {@link io.kvant.engine.artifact.Digests}, and
 * the quantized version folder ({@link io.kvant.engine.artifact.QuantizedArtifact}: write, verify,
 * load). No threads, no network: the reload agent moves these folders between buckets and calls
 * {@link io.kvant.engine.artifact.Manifest#verify} and {@link
 * io.kvant.engine.artifact.QuantizedArtifact#load}.
 */
package io.kvant.engine.artifact;
