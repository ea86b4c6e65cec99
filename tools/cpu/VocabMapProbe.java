import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Time to build the piece-to-id map of a vocabulary shaped like {@code bench synth}'s (every
 * lower-case string, shortest first, bare and with the SentencePiece word marker) as {@code
 * Map.copyOf} and as a {@code HashMap}, three times each. The immutable map probes linearly on
 * {@code String.hashCode}, and the dense hash codes of short strings cluster; this is why the
 * tokenizers keep HashMaps (perf/RESULTS.md, session 36).
 *
 * <pre>
 * java tools/cpu/VocabMapProbe.java 32000 49152 128256
 * </pre>
 */
public class VocabMapProbe {
  public static void main(String[] args) {
    for (String arg : args) {
      int size = Integer.parseInt(arg);
      Map<String, Integer> source = new HashMap<>();
      List<String> pieces = pieces(size);
      for (int i = 0; i < pieces.size(); i++) {
        source.putIfAbsent(pieces.get(i), i);
      }
      for (int round = 0; round < 3; round++) {
        long t0 = System.nanoTime();
        Map<String, Integer> immutable = Map.copyOf(source);
        long t1 = System.nanoTime();
        Map<String, Integer> hashed = new HashMap<>(source);
        long t2 = System.nanoTime();
        System.out.printf(
            "%,d pieces: Map.copyOf %.1f ms, HashMap %.1f ms (%d)%n",
            size, (t1 - t0) / 1e6, (t2 - t1) / 1e6, immutable.size() - hashed.size());
      }
    }
  }

  /** {@code size} pieces: a, ▁a, b, ▁b, ..., z, ▁z, aa, ▁aa, ... */
  static List<String> pieces(int size) {
    List<String> out = new ArrayList<>(size);
    char[] word = {'a'};
    boolean marked = false;
    while (out.size() < size) {
      out.add(marked ? "\u2581" + new String(word) : new String(word));
      if (marked) {
        word = next(word);
      }
      marked = !marked;
    }
    return out;
  }

  /** The next string in length-then-lexicographic order over a..z. */
  static char[] next(char[] word) {
    char[] n = word.clone();
    for (int i = n.length - 1; i >= 0; i--) {
      if (n[i] < 'z') {
        n[i]++;
        return n;
      }
      n[i] = 'a';
    }
    char[] longer = new char[word.length + 1];
    Arrays.fill(longer, 'a');
    return longer;
  }
}
