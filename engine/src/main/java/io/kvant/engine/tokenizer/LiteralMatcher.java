package io.kvant.engine.tokenizer;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Finds the longest of a fixed set of literal strings starting at a given position. Used for pieces
 * that are matched whole in the text (SentencePiece user-defined pieces, Hugging Face added
 * tokens). Cost per position is the number of literals sharing the first character there.
 */
final class LiteralMatcher {
  private static final int[] NONE = new int[0];

  private final List<String> literals;

  /** Literal indexes by first character, longest literal first. */
  private final Map<Character, int[]> byFirstChar;

  /**
   * @param literals the strings to match; empty strings are never matched
   */
  LiteralMatcher(List<String> literals) {
    this.literals = List.copyOf(literals);
    Map<Character, List<Integer>> groups = new HashMap<>();
    for (int i = 0; i < this.literals.size(); i++) {
      String literal = this.literals.get(i);
      if (!literal.isEmpty()) {
        groups.computeIfAbsent(literal.charAt(0), c -> new ArrayList<>()).add(i);
      }
    }
    Map<Character, int[]> table = new HashMap<>();
    groups.forEach(
        (c, indexes) -> {
          indexes.sort(
              Comparator.comparingInt((Integer i) -> this.literals.get(i).length()).reversed());
          table.put(c, indexes.stream().mapToInt(Integer::intValue).toArray());
        });
    this.byFirstChar = Map.copyOf(table);
  }

  boolean isEmpty() {
    return byFirstChar.isEmpty();
  }

  /** Index of the longest literal that occurs in {@code text} at {@code pos}, or -1. */
  int longestAt(String text, int pos) {
    for (int index : byFirstChar.getOrDefault(text.charAt(pos), NONE)) {
      if (text.startsWith(literals.get(index), pos)) {
        return index;
      }
    }
    return -1;
  }

  /** Length in chars of literal {@code index}. */
  int length(int index) {
    return literals.get(index).length();
  }
}
