package io.kvant.engine.forward;

/**
 * Which matmul kernels a {@link Transformer} runs.
 *
 * <ul>
 *   <li>{@link #FLOAT}: every weight decoded to float and multiplied in float; the reference, and
 *       bitwise independent of batch composition and thread count.
 *   <li>{@link #INTEGER}: weights of the quantized types with an integer kernel (Q8_0, Q4_0, I8,
 *       and I4 with groups of a multiple of 32; input width a multiple of 32) are repacked at load
 *       and multiplied with activations quantized to int8 per block of 32 ({@link
 *       io.kvant.engine.tensor.packed.PackedMatrix}); the output head's input is quantized as two
 *       int8 terms (about 15 bits), since its result is the token choice; other weights use the
 *       float kernels. Also bitwise independent of batch composition and thread count, but not
 *       equal to {@link #FLOAT}: activations are rounded to 8 bits (held to agreement with it by
 *       tests).
 * </ul>
 */
public enum MatmulKernels {
  FLOAT,
  INTEGER
}
