package io.kvant.server.cli;

/** The top-level usage text of the {@code kvant} launcher. */
final class Usage {
  private Usage() {}

  static final String TEXT =
      """
      usage: kvant <command> [options]

      commands:
        serve      run the gRPC sidecar (Generation, ModelAdmin, health, metrics)
        generate   generate text from a model on the command line
        quantize   quantize a model with a recipe and write a versioned artifact
        eval       compare a quantized model with full precision (agreement, KL, perplexity)
        agent      publish, verify and inspect versions in an artifact bucket
        bench      load generator, synthetic models and benchmarks

      run 'kvant <command> --help' for the options of a command.
      """;
}
