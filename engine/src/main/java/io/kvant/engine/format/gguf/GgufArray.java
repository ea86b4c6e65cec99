package io.kvant.engine.format.gguf;

/**
 * A parsed GGUF array value: its element type and the elements, kept in the narrowest Java array
 * that holds the stored bits ({@code byte[]} for 8-bit integers, {@code short[]} for 16-bit, {@code
 * int[]} for 32-bit, {@code long[]} for 64-bit, {@code float[]}, {@code double[]}, {@code
 * boolean[]}, {@code String[]}, or {@code GgufArray[]} for nested arrays). Unsigned types keep
 * their raw bits; readers widen them according to {@link #elementType()}. Never exposed mutably.
 */
record GgufArray(GgufValueType elementType, Object elements, int length) {}
