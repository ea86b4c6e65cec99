/**
 * Weight quantization: recipes, range selection, activation-aware scaling, evaluation, AIMET
 * encodings.
 *
 * <p>Entry points: {@link io.kvant.quant.quantize.Recipe#resolve} (built-in name, {@code
 * NAME:METHOD} or JSON file), {@link io.kvant.quant.quantize.Quantizer#run} / {@link
 * io.kvant.quant.quantize.Quantizer#quantize} (a full-precision model in, a quantized model out),
 * {@link io.kvant.quant.quantize.Evaluator} (top-1 agreement, KL, perplexity), {@link
 * io.kvant.quant.quantize.Sensitivity} (which tensors to keep in higher precision), {@link
 * io.kvant.quant.encoding.AimetEncodings} (encodings.json). Artifacts on disk are in {@link
 * io.kvant.quant.artifact}.
 *
 * <p>Design note. Storage types (in {@code engine.tensor}): INT8 per output channel, symmetric;
 * INT4 in groups of input columns (any even size; 32/64/128 in the recipes), symmetric (zero point
 * 8) or asymmetric (a uint8 zero point per group), the last group of a row partial when the width
 * is not a multiple (stories260K's FFN width 172); FP8 E4M3/E5M2 with a per-channel or per-tensor
 * scale. Scales are float32 and kept beside the codes. Activations stay float: every type decodes a
 * few rows to float and shares the F32 dot kernel, so results are bitwise independent of batch and
 * thread split, and decode-step speed is set by the bytes streamed.
 *
 * <p>Ranges: min-max, percentile, MSE clipping search (importance-weighted by mean squared
 * activations when calibration data is present), and AWQ (per-input-channel scales from calibration
 * activations, searched on output error and folded into the preceding RMSNorm, or into the rows of
 * {@code up} for {@code down} and of {@code v} for {@code o} without GQA), and GPTQ ({@link
 * io.kvant.quant.quantize.Gptq}: rounding errors compensated column by column through the inverse
 * Hessian of each layer's output error, layers quantized in order on the outputs of the quantized
 * ones before them). The ggml Q4_0/Q8_0 encoders exist to compare with llama.cpp-style files.
 */
package io.kvant.quant.quantize;
