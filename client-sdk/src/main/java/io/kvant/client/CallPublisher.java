package io.kvant.client;

import java.util.Objects;
import java.util.concurrent.Flow;
import java.util.function.BiFunction;

/**
 * A cold {@link Flow.Publisher}: each subscription makes its own call, whose gRPC flow control is
 * driven by the subscriber's {@code request(n)} (nothing is read from the network before it is
 * requested). Signals go through a {@link SerialExecutor}, so they never overlap (§1.3).
 */
final class CallPublisher<R, T> implements Flow.Publisher<T> {
  /** Makes the call of one subscription, bound to the given sink, not yet started. */
  interface CallFactory<R> {
    StreamCall<?, R> newCall(StreamCall.Sink<R> sink);
  }

  private final CallFactory<R> factory;
  private final BiFunction<R, String, T> mapper;

  /**
   * @param mapper turns a message into what the subscriber gets, given the call's request id
   */
  CallPublisher(CallFactory<R> factory, BiFunction<R, String, T> mapper) {
    this.factory = factory;
    this.mapper = mapper;
  }

  @Override
  public void subscribe(Flow.Subscriber<? super T> subscriber) {
    Objects.requireNonNull(subscriber, "subscriber"); // §1.9
    Subscription<R, T> subscription = new Subscription<>(subscriber, mapper);
    subscription.begin(factory.newCall(subscription));
  }

  private static final class Subscription<R, T> implements Flow.Subscription, StreamCall.Sink<R> {
    private final Flow.Subscriber<? super T> subscriber;
    private final BiFunction<R, String, T> mapper;
    private final SerialExecutor serial = new SerialExecutor();
    private StreamCall<?, R> call;
    // Set when the subscriber got a terminal signal or cancelled; then nothing more is signalled.
    private volatile boolean terminated;

    Subscription(Flow.Subscriber<? super T> subscriber, BiFunction<R, String, T> mapper) {
      this.subscriber = subscriber;
      this.mapper = mapper;
    }

    void begin(StreamCall<?, R> call) {
      this.call = call;
      serial.execute(
          () -> {
            try {
              subscriber.onSubscribe(this);
            } catch (RuntimeException e) {
              terminated = true; // §2.13: a subscriber that throws is treated as cancelled
            }
          });
      if (!terminated) {
        call.start();
      }
    }

    @Override
    public void request(long n) {
      if (n <= 0) {
        call.cancel();
        serial.execute(
            () -> {
              if (!terminated) {
                terminated = true;
                subscriber.onError(
                    new IllegalArgumentException(
                        "Reactive Streams §3.9: request(n) needs n > 0, got " + n));
              }
            });
        return;
      }
      call.request(n);
    }

    @Override
    public void cancel() {
      terminated = true;
      call.cancel();
    }

    @Override
    public void onNext(R message) {
      serial.execute(
          () -> {
            if (terminated) {
              return;
            }
            try {
              subscriber.onNext(mapper.apply(message, call.requestId()));
            } catch (RuntimeException e) {
              terminated = true;
              call.cancel();
            }
          });
    }

    @Override
    public void onError(KvantException error) {
      serial.execute(
          () -> {
            if (!terminated) {
              terminated = true;
              subscriber.onError(error);
            }
          });
    }

    @Override
    public void onComplete() {
      serial.execute(
          () -> {
            if (!terminated) {
              terminated = true;
              subscriber.onComplete();
            }
          });
    }
  }
}
