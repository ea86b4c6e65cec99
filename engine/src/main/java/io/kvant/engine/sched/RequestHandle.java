package io.kvant.engine.sched;

/** An admitted request: its id and a way to cancel it (applied at the next step boundary). */
public final class RequestHandle {
  private final String id;
  private final EngineLoop loop;

  RequestHandle(String id, EngineLoop loop) {
    this.id = id;
    this.loop = loop;
  }

  public String id() {
    return id;
  }

  /** Same as {@link EngineLoop#abort(String)}. */
  public void cancel() {
    loop.abort(id);
  }
}
