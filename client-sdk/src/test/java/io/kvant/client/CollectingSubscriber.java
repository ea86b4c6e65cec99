package io.kvant.client;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Flow;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A subscriber that requests {@code initialRequest} items and then one per item it receives (or
 * none, when {@code initialRequest} is the only demand wanted), checks that signals never overlap
 * and that it never gets more than it asked for, and records everything.
 */
final class CollectingSubscriber<T> implements Flow.Subscriber<T> {
  final List<T> items = new CopyOnWriteArrayList<>();
  final CompletableFuture<List<T>> done = new CompletableFuture<>();
  final AtomicLong requested = new AtomicLong();
  final AtomicBoolean protocolViolation = new AtomicBoolean();
  private final AtomicBoolean inSignal = new AtomicBoolean();
  private final long initialRequest;
  private final boolean requestOnEach;
  volatile Flow.Subscription subscription;

  CollectingSubscriber(long initialRequest, boolean requestOnEach) {
    this.initialRequest = initialRequest;
    this.requestOnEach = requestOnEach;
  }

  /** Requests one at a time. */
  static <T> CollectingSubscriber<T> oneByOne() {
    return new CollectingSubscriber<>(1, true);
  }

  void request(long n) {
    requested.accumulateAndGet(n, (a, b) -> a + b < 0 ? Long.MAX_VALUE : a + b);
    subscription.request(n);
  }

  private void enter() {
    if (!inSignal.compareAndSet(false, true)) {
      protocolViolation.set(true); // §1.3: overlapping signals
    }
  }

  private void exit() {
    inSignal.set(false);
  }

  @Override
  public void onSubscribe(Flow.Subscription s) {
    enter();
    subscription = s;
    if (initialRequest > 0) {
      request(initialRequest);
    }
    exit();
  }

  @Override
  public void onNext(T item) {
    enter();
    items.add(item);
    if (items.size() > requested.get()) {
      protocolViolation.set(true); // §1.1: more than requested
    }
    if (requestOnEach) {
      request(1);
    }
    exit();
  }

  @Override
  public void onError(Throwable t) {
    enter();
    done.completeExceptionally(t);
    exit();
  }

  @Override
  public void onComplete() {
    enter();
    done.complete(List.copyOf(items));
    exit();
  }
}
