/**
 * How one weight tensor is stored when quantized: {@link io.kvant.quant.encoding.WeightFormat}, the
 * scales and offsets of {@link io.kvant.quant.encoding.TensorEncoding}, and AIMET's {@code
 * encodings.json} ({@link io.kvant.quant.encoding.AimetEncodings}), the file that carries them
 * between tools. Used by both the quantizer and the artifact reader/writer, so neither depends on
 * the other through it.
 */
package io.kvant.quant.encoding;
