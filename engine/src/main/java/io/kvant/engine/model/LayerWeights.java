package io.kvant.engine.model;

import io.kvant.engine.tensor.Tensor;

/**
 * The weights of one transformer block. Matrices are [out][in]; norm weights and optional biases
 * are plain float vectors (they are tiny and always kept in full precision).
 *
 * @param qBias optional query bias (Qwen2-style), {@code null} when absent; likewise kBias, vBias
 */
public record LayerWeights(
    float[] attnNorm,
    Tensor wq,
    Tensor wk,
    Tensor wv,
    Tensor wo,
    float[] qBias,
    float[] kBias,
    float[] vBias,
    float[] ffnNorm,
    Tensor wGate,
    Tensor wUp,
    Tensor wDown) {}
