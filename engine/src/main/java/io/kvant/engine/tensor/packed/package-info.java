/**
 * Integer matmul kernels: weights of quantized types repacked into row panels ({@link
 * io.kvant.engine.tensor.packed.PackedMatrix}) and multiplied with int8-quantized activations
 * ({@link io.kvant.engine.tensor.packed.QuantizedInput}) in 16/32-bit integer lanes, float only at
 * block boundaries. The float {@link io.kvant.engine.tensor.Tensor#matmul} stays the reference.
 */
package io.kvant.engine.tensor.packed;
