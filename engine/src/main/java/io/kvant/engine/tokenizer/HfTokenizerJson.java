package io.kvant.engine.tokenizer;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Path;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.PatternSyntaxException;

/**
 * Reads a Hugging Face {@code tokenizer.json} describing a byte-level BPE model into a {@link
 * ByteLevelBpeTokenizer}.
 *
 * <p>Supported: {@code model} of type {@code BPE} with {@code vocab}, {@code merges} (as {@code "a
 * b"} strings or {@code ["a", "b"]} pairs), {@code ignore_merges} and {@code unk_token}; {@code
 * added_tokens}; a {@code normalizer} that is null or one of NFC/NFD/NFKC/NFKD; a {@code
 * pre_tokenizer} made of {@code Split} (regex or string pattern, behaviours Isolated, Removed,
 * MergedWithPrevious, MergedWithNext, {@code invert}), {@code Digits} and {@code ByteLevel} steps,
 * alone or in a {@code Sequence}, with {@code ByteLevel} last. {@code dropout} is ignored (encoding
 * is deterministic). Anything else (WordPiece, Unigram, Metaspace, continuing-subword prefixes...)
 * is rejected with a {@link TokenizerFormatException} rather than encoded differently.
 *
 * <p>BOS is the first special token of a {@code TemplateProcessing} post-processor's
 * single-sequence template (possibly inside a {@code Sequence} post-processor), else the added
 * special token {@code <|begin_of_text|>}, {@code <s>} or {@code <bos>} if present. EOS is the
 * added special token {@code <|end_of_text|>}, {@code <|endoftext|>}, {@code </s>} or {@code
 * <eos>}, whichever comes first in that list. Either is -1 when not found (chat models often stop
 * on other tokens too; that is the caller's configuration).
 */
public final class HfTokenizerJson {
  private static final List<String> BOS_NAMES = List.of("<|begin_of_text|>", "<s>", "<bos>");
  private static final List<String> EOS_NAMES =
      List.of("<|end_of_text|>", "<|endoftext|>", "</s>", "<eos>");

  /** Most merges accepted; real tables hold a few hundred thousand. */
  private static final int MAX_MERGES = 4_000_000;

  private HfTokenizerJson() {}

  /**
   * Reads {@code path}.
   *
   * @throws TokenizerFormatException if the file is not valid JSON, not a supported byte-level BPE
   *     tokenizer, or inconsistent; the message names the file
   * @throws IOException if it cannot be read
   */
  public static ByteLevelBpeTokenizer read(Path path) throws IOException {
    return parse(TokenizerFiles.readAll(path), path.toString());
  }

  /**
   * Reads {@code path} as whichever BPE flavour it describes: byte-level (GPT-2, Llama 3, Qwen; see
   * {@link #read}) or SentencePiece-style ({@link MergeRankedSpmTokenizer}: no pre-tokenizer, a
   * normalizer that prepends and substitutes {@code ▁}, as in Llama 2 and TinyStories files).
   *
   * @param eosToken the EOS token's content as the model's {@code tokenizer_config.json} names it,
   *     or null to look for the usual names
   * @throws TokenizerFormatException if the file is not valid or not a supported tokenizer
   */
  public static Tokenizer load(Path path, String eosToken) throws IOException {
    byte[] json = TokenizerFiles.readAll(path);
    JsonNode root = tree(json, path.toString());
    Reader reader = new Reader(path.toString());
    if (reader.isSentencePieceStyle(root)) {
      return reader.readSentencePieceStyle(root, eosToken);
    }
    return reader.read(root);
  }

  static ByteLevelBpeTokenizer parse(byte[] json, String source) throws TokenizerFormatException {
    return new Reader(source).read(tree(json, source));
  }

  private static JsonNode tree(byte[] json, String source) throws TokenizerFormatException {
    JsonNode root;
    try {
      root = new ObjectMapper().readTree(json);
    } catch (JacksonException e) {
      throw new TokenizerFormatException(source, "not valid JSON: " + e.getOriginalMessage(), e);
    } catch (IOException e) {
      throw new TokenizerFormatException(source, "not valid JSON", e);
    }
    if (root == null || !root.isObject()) {
      throw new TokenizerFormatException(source, "top level is not a JSON object");
    }
    return root;
  }

  /** One parse; holds the source name for error messages. */
  private record Reader(String source) {

    /** No pre-tokenizer, and a normalizer with Prepend/Replace steps: Llama 2 style. */
    boolean isSentencePieceStyle(JsonNode root) {
      JsonNode pre = root.get("pre_tokenizer");
      return (pre == null || pre.isNull()) && hasSpaceMarkerStep(root.get("normalizer"));
    }

    private static boolean hasSpaceMarkerStep(JsonNode node) {
      if (node == null || node.isNull()) {
        return false;
      }
      String type = node.path("type").asText("");
      if (type.equals("Sequence")) {
        for (JsonNode child : node.path("normalizers")) {
          if (hasSpaceMarkerStep(child)) {
            return true;
          }
        }
        return false;
      }
      return type.equals("Prepend") || type.equals("Replace");
    }

    Tokenizer readSentencePieceStyle(JsonNode root, String eosToken)
        throws TokenizerFormatException {
      JsonNode model = object(root.get("model"), "model");
      if (!model.path("type").asText("BPE").equals("BPE")) {
        throw fail("model type " + model.path("type").asText() + " is not supported (only BPE)");
      }
      for (String field : new String[] {"continuing_subword_prefix", "end_of_word_suffix"}) {
        if (!model.path(field).asText("").isEmpty()) {
          throw fail("model." + field + " is not supported");
        }
      }
      Map<String, Integer> vocab = readVocab(object(model.get("vocab"), "model.vocab"));
      List<ByteLevelBpeTokenizer.AddedToken> added = readAddedTokens(root.get("added_tokens"));
      String unk = model.path("unk_token").isTextual() ? model.get("unk_token").asText() : null;
      int eos =
          eosToken != null ? findSpecial(added, List.of(eosToken)) : findSpecial(added, EOS_NAMES);
      return new MergeRankedSpmTokenizer(
          source,
          vocab,
          readMerges(model.get("merges")),
          added,
          spmNormalizer(root.get("normalizer")),
          model.path("byte_fallback").asBoolean(false),
          unk,
          model.path("fuse_unk").asBoolean(false),
          findBos(root.get("post_processor"), added),
          eos);
    }

    /** The normalizer steps of a SentencePiece-style file, composed in order. */
    private java.util.function.UnaryOperator<String> spmNormalizer(JsonNode node)
        throws TokenizerFormatException {
      String type = node.path("type").asText("");
      switch (type) {
        case "Sequence" -> {
          java.util.function.UnaryOperator<String> all = t -> t;
          for (JsonNode child : node.path("normalizers")) {
            java.util.function.UnaryOperator<String> first = all;
            java.util.function.UnaryOperator<String> next = spmNormalizer(child);
            all = t -> next.apply(first.apply(t));
          }
          return all;
        }
        case "Prepend" -> {
          String prefix = node.path("prepend").asText("");
          return t -> t.isEmpty() ? t : prefix + t;
        }
        case "Replace" -> {
          JsonNode pattern = node.path("pattern");
          if (!pattern.path("String").isTextual()) {
            throw fail("Replace normalizer: only String patterns are supported");
          }
          String from = pattern.get("String").asText();
          String to = node.path("content").asText("");
          if (from.isEmpty()) {
            throw fail("Replace normalizer with an empty pattern");
          }
          return t -> t.replace(from, to);
        }
        case "NFC", "NFD", "NFKC", "NFKD" -> {
          Normalizer.Form form = Normalizer.Form.valueOf(type);
          return t -> Normalizer.normalize(t, form);
        }
        default -> throw fail("normalizer " + type + " is not supported");
      }
    }

    ByteLevelBpeTokenizer read(JsonNode root) throws TokenizerFormatException {
      JsonNode model = object(root.get("model"), "model");
      String type = model.path("type").asText("BPE");
      if (!type.equals("BPE")) {
        throw fail("model type " + type + " is not supported (only BPE)");
      }
      for (String field : new String[] {"continuing_subword_prefix", "end_of_word_suffix"}) {
        if (!model.path(field).asText("").isEmpty()) {
          throw fail("model." + field + " is not supported");
        }
      }
      Map<String, Integer> vocab = readVocab(object(model.get("vocab"), "model.vocab"));
      List<String[]> merges = readMerges(model.get("merges"));
      List<ByteLevelBpeTokenizer.AddedToken> added = readAddedTokens(root.get("added_tokens"));
      String unk = model.path("unk_token").isTextual() ? model.get("unk_token").asText() : null;
      return new ByteLevelBpeTokenizer(
          source,
          vocab,
          merges,
          added,
          readNormalizer(root.get("normalizer")),
          readPreTokenizer(root.get("pre_tokenizer")),
          model.path("ignore_merges").asBoolean(false),
          unk,
          findBos(root.get("post_processor"), added),
          findSpecial(added, EOS_NAMES));
    }

    private Map<String, Integer> readVocab(JsonNode vocabNode) throws TokenizerFormatException {
      Map<String, Integer> vocab = new HashMap<>();
      for (Map.Entry<String, JsonNode> e : vocabNode.properties()) {
        if (!e.getValue().canConvertToExactIntegral() || !e.getValue().canConvertToInt()) {
          throw fail("vocab entry " + e.getKey() + " has a non-integer id " + e.getValue());
        }
        vocab.put(e.getKey(), e.getValue().intValue());
      }
      return vocab;
    }

    private List<String[]> readMerges(JsonNode node) throws TokenizerFormatException {
      if (node == null || node.isNull()) {
        return List.of();
      }
      if (!node.isArray()) {
        throw fail("model.merges is not an array");
      }
      if (node.size() > MAX_MERGES) {
        throw fail(node.size() + " merges is more than the " + MAX_MERGES + " supported");
      }
      List<String[]> merges = new ArrayList<>(node.size());
      for (JsonNode merge : node) {
        if (merge.isTextual()) {
          merges.add(ByteLevelBpeTokenizer.splitMerge(source, merge.asText()));
        } else if (merge.isArray()
            && merge.size() == 2
            && merge.get(0).isTextual()
            && merge.get(1).isTextual()) {
          merges.add(new String[] {merge.get(0).asText(), merge.get(1).asText()});
        } else {
          throw fail("merge " + merges.size() + " is neither \"a b\" nor [\"a\", \"b\"]");
        }
      }
      return merges;
    }

    private List<ByteLevelBpeTokenizer.AddedToken> readAddedTokens(JsonNode node)
        throws TokenizerFormatException {
      List<ByteLevelBpeTokenizer.AddedToken> added = new ArrayList<>();
      if (node == null || node.isNull()) {
        return added;
      }
      if (!node.isArray()) {
        throw fail("added_tokens is not an array");
      }
      for (JsonNode token : node) {
        JsonNode id = token.get("id");
        JsonNode content = token.get("content");
        if (id == null || !id.canConvertToInt() || content == null || !content.isTextual()) {
          throw fail("added token without integer id and string content: " + token);
        }
        added.add(
            new ByteLevelBpeTokenizer.AddedToken(
                id.intValue(), content.asText(), token.path("special").asBoolean(false)));
      }
      return added;
    }

    private Normalizer.Form readNormalizer(JsonNode node) throws TokenizerFormatException {
      if (node == null || node.isNull()) {
        return null;
      }
      String type = node.path("type").asText("");
      return switch (type) {
        case "NFC" -> Normalizer.Form.NFC;
        case "NFD" -> Normalizer.Form.NFD;
        case "NFKC" -> Normalizer.Form.NFKC;
        case "NFKD" -> Normalizer.Form.NFKD;
        default -> throw fail("normalizer " + type + " is not supported");
      };
    }

    private PreTokenizer readPreTokenizer(JsonNode node) throws TokenizerFormatException {
      if (node == null || node.isNull()) {
        throw fail("no pre_tokenizer: only byte-level BPE (with a ByteLevel step) is supported");
      }
      List<PreTokenizer.Step> steps = new ArrayList<>();
      addSteps(node, steps);
      if (steps.isEmpty() || !(steps.getLast() instanceof PreTokenizer.ByteLevel)) {
        throw fail("pre_tokenizer must end with ByteLevel (only byte-level BPE is supported)");
      }
      if (steps.stream().filter(s -> s instanceof PreTokenizer.ByteLevel).count() > 1) {
        throw fail("pre_tokenizer has more than one ByteLevel step");
      }
      return new PreTokenizer(steps);
    }

    private void addSteps(JsonNode node, List<PreTokenizer.Step> steps)
        throws TokenizerFormatException {
      String type = node.path("type").asText("");
      switch (type) {
        case "Sequence" -> {
          JsonNode children = node.get("pretokenizers");
          if (children == null || !children.isArray()) {
            throw fail("Sequence pre_tokenizer without a pretokenizers array");
          }
          for (JsonNode child : children) {
            addSteps(child, steps);
          }
        }
        case "ByteLevel" ->
            steps.add(
                new PreTokenizer.ByteLevel(
                    node.path("add_prefix_space").asBoolean(false),
                    node.path("use_regex").asBoolean(true)));
        case "Split" -> steps.add(readSplit(node));
        case "Digits" ->
            steps.add(
                new PreTokenizer.RegexSplit(
                    PreTokenizer.compile(
                        node.path("individual_digits").asBoolean(false) ? "\\p{N}" : "\\p{N}+"),
                    PreTokenizer.Behavior.ISOLATED,
                    false));
        default -> throw fail("pre_tokenizer " + type + " is not supported");
      }
    }

    private PreTokenizer.RegexSplit readSplit(JsonNode node) throws TokenizerFormatException {
      JsonNode pattern = object(node.get("pattern"), "Split.pattern");
      String regex;
      if (pattern.path("Regex").isTextual()) {
        regex = pattern.get("Regex").asText();
      } else if (pattern.path("String").isTextual()) {
        regex = java.util.regex.Pattern.quote(pattern.get("String").asText());
      } else {
        throw fail("Split.pattern has neither Regex nor String");
      }
      PreTokenizer.Behavior behavior =
          switch (node.path("behavior").asText("")) {
            case "Isolated" -> PreTokenizer.Behavior.ISOLATED;
            case "Removed" -> PreTokenizer.Behavior.REMOVED;
            case "MergedWithPrevious" -> PreTokenizer.Behavior.MERGED_WITH_PREVIOUS;
            case "MergedWithNext" -> PreTokenizer.Behavior.MERGED_WITH_NEXT;
            default -> throw fail("Split behavior " + node.path("behavior") + " is not supported");
          };
      try {
        return new PreTokenizer.RegexSplit(
            PreTokenizer.compile(regex), behavior, node.path("invert").asBoolean(false));
      } catch (PatternSyntaxException e) {
        throw new TokenizerFormatException(
            source, "Split regex cannot be compiled: " + e.getDescription(), e);
      }
    }

    private int findBos(JsonNode postProcessor, List<ByteLevelBpeTokenizer.AddedToken> added)
        throws TokenizerFormatException {
      int fromTemplate = templateBos(postProcessor);
      return fromTemplate >= 0 ? fromTemplate : findSpecial(added, BOS_NAMES);
    }

    /** The id of the leading special token of a TemplateProcessing single template, or -1. */
    private int templateBos(JsonNode node) throws TokenizerFormatException {
      if (node == null || node.isNull()) {
        return -1;
      }
      switch (node.path("type").asText("")) {
        case "Sequence" -> {
          for (JsonNode child : node.path("processors")) {
            int id = templateBos(child);
            if (id >= 0) {
              return id;
            }
          }
          return -1;
        }
        case "TemplateProcessing" -> {
          JsonNode first = node.path("single").path(0);
          if (!first.has("SpecialToken")) {
            return -1;
          }
          String name = first.path("SpecialToken").path("id").asText();
          JsonNode ids = node.path("special_tokens").path(name).path("ids");
          if (ids.size() != 1 || !ids.get(0).canConvertToInt()) {
            throw fail("post_processor special token " + name + " does not have exactly one id");
          }
          return ids.get(0).intValue();
        }
        default -> {
          return -1;
        }
      }
    }

    private static int findSpecial(
        List<ByteLevelBpeTokenizer.AddedToken> added, List<String> names) {
      for (String name : names) {
        for (ByteLevelBpeTokenizer.AddedToken token : added) {
          if (token.special() && token.content().equals(name)) {
            return token.id();
          }
        }
      }
      return -1;
    }

    private JsonNode object(JsonNode node, String what) throws TokenizerFormatException {
      if (node == null || !node.isObject()) {
        throw fail(what + " is missing or not an object");
      }
      return node;
    }

    private TokenizerFormatException fail(String problem) {
      return new TokenizerFormatException(source, problem);
    }
  }
}
