package io.kvant.client;

import io.grpc.CallCredentials;
import io.grpc.CallOptions;
import io.grpc.Deadline;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import java.time.Duration;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.DoubleSupplier;
import java.util.function.Function;

/**
 * What every call of one client shares: the channel, the credentials, the default deadline, the
 * retry policy and the timer that runs backoff waits. Thread-safe.
 */
final class Transport implements AutoCloseable {
  private final ManagedChannel channel;
  private final CallCredentials credentials;
  private final Duration defaultDeadline;
  private final RetryPolicy retryPolicy;
  private final ScheduledExecutorService scheduler;
  private final DoubleSupplier random;
  private final Deadline.Ticker ticker;
  private final Set<StreamCall<?, ?>> waitingToRetry = ConcurrentHashMap.newKeySet();

  Transport(
      ManagedChannel channel,
      CallCredentials credentials,
      Duration defaultDeadline,
      RetryPolicy retryPolicy,
      DoubleSupplier random,
      Deadline.Ticker ticker) {
    this.channel = channel;
    this.credentials = credentials;
    this.defaultDeadline = defaultDeadline;
    this.retryPolicy = retryPolicy;
    this.random = random;
    this.ticker = ticker;
    ScheduledThreadPoolExecutor timer =
        new ScheduledThreadPoolExecutor(
            1,
            r -> {
              Thread t = Executors.defaultThreadFactory().newThread(r);
              t.setName("kvant-client-retry-" + t.getName());
              t.setDaemon(true);
              return t;
            });
    timer.setRemoveOnCancelPolicy(true);
    this.scheduler = timer;
  }

  Transport(ManagedChannel channel, ChannelSettings settings) {
    this(
        channel,
        settings.token() == null ? null : new BearerToken(settings.token()),
        settings.defaultDeadline(),
        settings.retryPolicy(),
        () -> ThreadLocalRandom.current().nextDouble(),
        Deadline.getSystemTicker());
  }

  ManagedChannel channel() {
    return channel;
  }

  RetryPolicy retryPolicy() {
    return retryPolicy;
  }

  ScheduledExecutorService scheduler() {
    return scheduler;
  }

  Set<StreamCall<?, ?>> waitingToRetry() {
    return waitingToRetry;
  }

  DoubleSupplier random() {
    return random;
  }

  /** The deadline of a call starting now: the default one, or none for long-lived watches. */
  Deadline newDeadline(boolean applyDefault) {
    if (!applyDefault || defaultDeadline == null) {
      return null;
    }
    return Deadline.after(defaultDeadline.toNanos(), TimeUnit.NANOSECONDS, ticker);
  }

  CallOptions callOptions(Deadline deadline) {
    CallOptions options = CallOptions.DEFAULT;
    if (deadline != null) {
      options = options.withDeadline(deadline);
    }
    if (credentials != null) {
      options = options.withCallCredentials(credentials);
    }
    return options;
  }

  static String requestIdOr(String given) {
    return given == null || given.isEmpty() ? UUID.randomUUID().toString() : given;
  }

  /**
   * Starts a unary call whose future holds the mapped response; cancelling the future cancels the
   * call.
   */
  <Q, R, V> CompletableFuture<V> unary(
      MethodDescriptor<Q, R> method,
      Q request,
      String requestId,
      boolean retry,
      Function<R, V> mapper) {
    CompletableFuture<V> future = new CompletableFuture<>();
    StreamCall<Q, R> call =
        new StreamCall<>(
            this,
            method,
            request,
            requestId,
            newDeadline(true),
            retry ? retryPolicy : RetryPolicy.none(),
            new StreamCall.Sink<>() {
              private R response;

              @Override
              public void onNext(R message) {
                response = message;
              }

              @Override
              public void onError(KvantException error) {
                future.completeExceptionally(error);
              }

              @Override
              public void onComplete() {
                if (response == null) {
                  future.completeExceptionally(
                      Errors.from(
                          Status.INTERNAL.withDescription("server sent no response"), requestId));
                } else {
                  try {
                    future.complete(mapper.apply(response));
                  } catch (RuntimeException e) {
                    future.completeExceptionally(e);
                  }
                }
              }
            });
    future.whenComplete(
        (r, t) -> {
          if (t instanceof CancellationException) {
            call.cancel();
          }
        });
    call.request(1);
    call.start();
    return future;
  }

  /** A unary call, waiting for its end in the caller's thread. */
  <Q, R, V> V blockingUnary(
      MethodDescriptor<Q, R> method,
      Q request,
      String requestId,
      boolean retry,
      Function<R, V> mapper) {
    CompletableFuture<V> future = unary(method, request, requestId, retry, mapper);
    try {
      return future.get();
    } catch (InterruptedException e) {
      future.cancel(false);
      Thread.currentThread().interrupt();
      throw Errors.interrupted(requestId, e);
    } catch (ExecutionException e) {
      throw Errors.unwrap(e, requestId);
    }
  }

  /** Shuts the channel down, waiting a bounded time for calls in flight to end. Idempotent. */
  @Override
  public void close() {
    channel.shutdown();
    scheduler.shutdownNow();
    // Calls sleeping before a retry would otherwise never end.
    for (StreamCall<?, ?> call : waitingToRetry) {
      call.abortRetry();
    }
    try {
      if (!channel.awaitTermination(5, TimeUnit.SECONDS)) {
        channel.shutdownNow();
        channel.awaitTermination(1, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      channel.shutdownNow();
      Thread.currentThread().interrupt();
    }
  }
}
