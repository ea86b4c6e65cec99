package io.kvant.server.model;

/**
 * What a swap did.
 *
 * @param serving the version serving after it
 * @param previous the version serving before it
 * @param durationMillis wall time of the whole swap
 * @param recalibratedTensors tensors re-quantized for it
 */
public record SwapResult(
    String serving, String previous, long durationMillis, int recalibratedTensors) {}
