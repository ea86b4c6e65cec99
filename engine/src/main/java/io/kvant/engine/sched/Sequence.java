package io.kvant.engine.sched;

import io.kvant.engine.sample.Sampler;
import io.kvant.engine.sample.StopMatcher;
import java.util.Arrays;

/**
 * One request's mutable state inside the scheduler: its tokens (prompt then generated), how many of
 * them have KV computed, its KV handle, sampler and detokenizer. Touched only by the engine loop.
 */
final class Sequence {
  enum Status {
    WAITING,
    RUNNING,
    FINISHED
  }

  final GenerationRequest request;

  /**
   * The version this sequence runs on: the one it was admitted with, until an IMMEDIATE swap moves
   * it (its KV computed so far is kept).
   */
  ServingModel model;

  final long arrival;
  final int promptLength;
  final Sampler sampler;
  final StopMatcher stop;
  final TokenTextDecoder decoder;
  int[] tokens;
  int numTokens;
  int numComputed;
  int kvSeq = -1;
  int cachedPromptTokens = -1;
  Status status = Status.WAITING;
  int preemptions;

  /** Counted out of the admission queue bound (first scheduled, or finished). */
  boolean started;

  Sequence(GenerationRequest request, long arrival) {
    this.request = request;
    this.model = request.model();
    this.arrival = arrival;
    this.promptLength = request.promptTokens().length;
    this.tokens = Arrays.copyOf(request.promptTokens(), promptLength + 16);
    this.numTokens = promptLength;
    this.sampler = new Sampler(request.sampling(), request.promptTokens());
    this.stop = new StopMatcher(request.stops());
    this.decoder = request.model().newDecoder(request.promptTokens());
  }

  String id() {
    return request.id();
  }

  int priority() {
    return request.priority();
  }

  int generated() {
    return numTokens - promptLength;
  }

  void append(int token) {
    if (numTokens == tokens.length) {
      tokens = Arrays.copyOf(tokens, tokens.length * 2);
    }
    tokens[numTokens++] = token;
  }

  /** Scheduling order: lower priority value first, then earlier arrival. */
  static int compare(Sequence a, Sequence b) {
    int c = Integer.compare(a.priority(), b.priority());
    return c != 0 ? c : Long.compare(a.arrival, b.arrival);
  }

  @Override
  public String toString() {
    return id() + "[" + status + ", " + numComputed + "/" + numTokens + ", kv=" + kvSeq + "]";
  }
}
