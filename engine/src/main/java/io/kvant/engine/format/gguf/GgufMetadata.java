package io.kvant.engine.format.gguf;

import io.kvant.engine.format.ModelFormatException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * The key/value metadata of a GGUF file, parsed eagerly and immutable.
 *
 * <p>Typed getters: a missing key, or a value whose type does not fit the getter, gives a {@link
 * ModelFormatException} naming the key and the file. Integer getters accept any integer value type
 * whose value fits the Java type (a {@code uint32} of 0xFFFFFFFF fits {@link #getLong} but not
 * {@link #getInt}). Float getters accept {@code float32} and {@code float64}. The variants with a
 * default return it only when the key is absent; a present key of the wrong type is still an error.
 */
public final class GgufMetadata {
  /** A scalar or array value as stored; scalar integers are widened to exact {@code Long}s. */
  record Value(GgufValueType type, Object value) {}

  private final Path file;
  private final Map<String, Value> values;

  GgufMetadata(Path file, LinkedHashMap<String, Value> values) {
    this.file = file;
    this.values = Collections.unmodifiableMap(values);
  }

  /** All keys, in file order. */
  public Set<String> keys() {
    return values.keySet();
  }

  /** Number of key/value pairs. */
  public int size() {
    return values.size();
  }

  /** Whether the key is present. */
  public boolean contains(String key) {
    return values.containsKey(key);
  }

  /** The stored type of a key's value, or empty if absent. */
  public Optional<GgufValueType> type(String key) {
    return Optional.ofNullable(values.get(key)).map(Value::type);
  }

  /** For an array-valued key, the element type; empty if absent or not an array. */
  public Optional<GgufValueType> arrayElementType(String key) {
    return Optional.ofNullable(values.get(key))
        .filter(v -> v.value instanceof GgufArray)
        .map(v -> ((GgufArray) v.value).elementType());
  }

  /**
   * The value as plain Java objects, or empty if absent: integers of up to 32 bits and {@code
   * int64} as {@code Long} (unsigned values widened exactly), {@code uint64} as {@code Long} with
   * its raw bits (negative above 2^63), {@code Float}, {@code Double}, {@code Boolean}, {@code
   * String}, and arrays as unmodifiable {@code List}s of the same (nested arrays as nested lists).
   */
  public Optional<Object> value(String key) {
    Value v = values.get(key);
    if (v == null) {
      return Optional.empty();
    }
    return Optional.of(v.value instanceof GgufArray a ? toList(a) : v.value);
  }

  private static List<Object> toList(GgufArray a) {
    List<Object> out = new ArrayList<>(a.length());
    for (int i = 0; i < a.length(); i++) {
      out.add(
          switch (a.elements()) {
            case GgufArray[] nested -> toList(nested[i]);
            case String[] s -> s[i];
            case boolean[] b -> b[i];
            case float[] f -> f[i];
            case double[] d -> d[i];
            default -> integerAt(a, i);
          });
    }
    return Collections.unmodifiableList(out);
  }

  /** Element {@code i} of an integer array, widened according to signedness (uint64: raw bits). */
  private static long integerAt(GgufArray a, int i) {
    return switch (a.elements()) {
      case byte[] b -> a.elementType() == GgufValueType.UINT8 ? Byte.toUnsignedLong(b[i]) : b[i];
      case short[] s -> a.elementType() == GgufValueType.UINT16 ? Short.toUnsignedLong(s[i]) : s[i];
      case int[] n -> a.elementType() == GgufValueType.UINT32 ? Integer.toUnsignedLong(n[i]) : n[i];
      case long[] l -> l[i];
      default -> throw new IllegalStateException("not an integer array: " + a.elementType());
    };
  }

  private Value require(String key) throws ModelFormatException {
    Value v = values.get(key);
    if (v == null) {
      throw new ModelFormatException(file, "metadata key '" + key + "' is missing");
    }
    return v;
  }

  private ModelFormatException wrongType(String key, Value v, String wanted) {
    String actual =
        v.value instanceof GgufArray a
            ? "array of " + a.elementType().name().toLowerCase()
            : v.type.name().toLowerCase();
    return new ModelFormatException(
        file, "metadata key '" + key + "' is " + actual + ", expected " + wanted);
  }

  /** The string value of {@code key}. */
  public String getString(String key) throws ModelFormatException {
    Value v = require(key);
    if (v.value instanceof String s) {
      return s;
    }
    throw wrongType(key, v, "string");
  }

  /** The string value of {@code key}, or empty if the key is absent. */
  public Optional<String> findString(String key) throws ModelFormatException {
    return contains(key) ? Optional.of(getString(key)) : Optional.empty();
  }

  /** The integer value of {@code key} as a {@code long}. */
  public long getLong(String key) throws ModelFormatException {
    Value v = require(key);
    if (!v.type.isInteger()) {
      throw wrongType(key, v, "an integer");
    }
    long raw = (Long) v.value;
    if (v.type == GgufValueType.UINT64 && raw < 0) {
      throw new ModelFormatException(
          file,
          "metadata key '"
              + key
              + "' value "
              + Long.toUnsignedString(raw)
              + " does not fit in a signed 64-bit integer");
    }
    return raw;
  }

  /** The integer value of {@code key}, or {@code defaultValue} if the key is absent. */
  public long getLong(String key, long defaultValue) throws ModelFormatException {
    return contains(key) ? getLong(key) : defaultValue;
  }

  /** The integer value of {@code key} as an {@code int}. */
  public int getInt(String key) throws ModelFormatException {
    long value = getLong(key);
    if (value != (int) value) {
      throw new ModelFormatException(
          file, "metadata key '" + key + "' value " + value + " does not fit in a 32-bit int");
    }
    return (int) value;
  }

  /** The integer value of {@code key}, or {@code defaultValue} if the key is absent. */
  public int getInt(String key, int defaultValue) throws ModelFormatException {
    return contains(key) ? getInt(key) : defaultValue;
  }

  /** The floating-point value of {@code key} ({@code float64} values are narrowed). */
  public float getFloat(String key) throws ModelFormatException {
    return (float) getDouble(key);
  }

  /** The floating-point value of {@code key}, or {@code defaultValue} if the key is absent. */
  public float getFloat(String key, float defaultValue) throws ModelFormatException {
    return contains(key) ? getFloat(key) : defaultValue;
  }

  /** The floating-point value of {@code key} ({@code float32} or {@code float64}). */
  public double getDouble(String key) throws ModelFormatException {
    Value v = require(key);
    return switch (v.value) {
      case Float f -> f;
      case Double d -> d;
      default -> throw wrongType(key, v, "float32 or float64");
    };
  }

  /** The boolean value of {@code key}. */
  public boolean getBoolean(String key) throws ModelFormatException {
    Value v = require(key);
    if (v.value instanceof Boolean b) {
      return b;
    }
    throw wrongType(key, v, "bool");
  }

  /** The boolean value of {@code key}, or {@code defaultValue} if the key is absent. */
  public boolean getBoolean(String key, boolean defaultValue) throws ModelFormatException {
    return contains(key) ? getBoolean(key) : defaultValue;
  }

  private GgufArray requireArray(String key, String wanted) throws ModelFormatException {
    Value v = require(key);
    if (v.value instanceof GgufArray a) {
      return a;
    }
    throw wrongType(key, v, wanted);
  }

  /** The elements of a string array. */
  public List<String> getStringArray(String key) throws ModelFormatException {
    GgufArray a = requireArray(key, "array of string");
    if (a.elements() instanceof String[] s) {
      return List.of(s);
    }
    throw wrongType(key, values.get(key), "array of string");
  }

  /** The elements of a {@code float32} or {@code float64} array, as floats (a fresh copy). */
  public float[] getFloatArray(String key) throws ModelFormatException {
    GgufArray a = requireArray(key, "array of float32");
    return switch (a.elements()) {
      case float[] f -> f.clone();
      case double[] d -> {
        float[] out = new float[d.length];
        for (int i = 0; i < d.length; i++) {
          out[i] = (float) d[i];
        }
        yield out;
      }
      default -> throw wrongType(key, values.get(key), "array of float32");
    };
  }

  /** The elements of an integer array of any integer type, as longs (a fresh copy). */
  public long[] getLongArray(String key) throws ModelFormatException {
    GgufArray a = requireArray(key, "array of integers");
    if (!a.elementType().isInteger()) {
      throw wrongType(key, values.get(key), "array of integers");
    }
    long[] out = new long[a.length()];
    for (int i = 0; i < out.length; i++) {
      out[i] = integerAt(a, i);
      if (a.elementType() == GgufValueType.UINT64 && out[i] < 0) {
        throw new ModelFormatException(
            file,
            "metadata key '"
                + key
                + "' element "
                + i
                + " value "
                + Long.toUnsignedString(out[i])
                + " does not fit in a signed 64-bit integer");
      }
    }
    return out;
  }

  /** The elements of an integer array of any integer type, as ints (a fresh copy). */
  public int[] getIntArray(String key) throws ModelFormatException {
    long[] wide = getLongArray(key);
    int[] out = new int[wide.length];
    for (int i = 0; i < out.length; i++) {
      if (wide[i] != (int) wide[i]) {
        throw new ModelFormatException(
            file,
            "metadata key '"
                + key
                + "' element "
                + i
                + " value "
                + wide[i]
                + " does not fit in a 32-bit int");
      }
      out[i] = (int) wide[i];
    }
    return out;
  }

  /** The length of an array-valued key. */
  public int getArrayLength(String key) throws ModelFormatException {
    return requireArray(key, "an array").length();
  }
}
