import io.kvant.perf.synth.SyntheticVocab;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Time to build the piece-to-id map of {@code bench synth}'s vocabulary ({@link SyntheticVocab}:
 * every lower-case string, shortest first, bare and with the SentencePiece word marker) as {@code
 * Map.copyOf} and as a {@code HashMap}, three times each. The immutable map probes linearly on
 * {@code String.hashCode}, and the dense hash codes of short strings cluster; this is why the
 * tokenizers keep HashMaps (`PieceMaps`; perf/RESULTS.md, session 36).
 *
 * <pre>
 * java -cp perf/target/kvant-perf-0.1.0-SNAPSHOT.jar tools/cpu/VocabMapProbe.java 32000 49152 128256
 * </pre>
 */
public class VocabMapProbe {
  public static void main(String[] args) {
    for (String arg : args) {
      int size = Integer.parseInt(arg);
      List<String> pieces = SyntheticVocab.of(size).tokens();
      Map<String, Integer> source = new HashMap<>();
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
}
