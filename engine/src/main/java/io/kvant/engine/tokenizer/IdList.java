package io.kvant.engine.tokenizer;

import java.util.Arrays;

/** A growable list of ints, to collect token ids without boxing. */
final class IdList {
  private int[] ids;
  private int size;

  IdList(int initialCapacity) {
    ids = new int[Math.max(4, initialCapacity)];
  }

  void add(int id) {
    if (size == ids.length) {
      ids = Arrays.copyOf(ids, ids.length * 2);
    }
    ids[size++] = id;
  }

  int[] toArray() {
    return Arrays.copyOf(ids, size);
  }
}
