package io.kvant.reload;

import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.model.ModelWeights;
import io.kvant.engine.tokenizer.Tokenizer;

/**
 * What the server serves now, as the agent sees it.
 *
 * @param id version id
 * @param recipe its quantization recipe ("none": the weights are the full-precision ones)
 * @param config model shape (every version must keep it)
 * @param tokenizer the tokenizer (for golden and calibration prompts)
 * @param weights the tensors served
 */
public record ServingView(
    String id, String recipe, LlamaConfig config, Tokenizer tokenizer, ModelWeights weights) {}
