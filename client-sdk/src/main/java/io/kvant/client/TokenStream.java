package io.kvant.client;

/**
 * A streamed completion, chunk by chunk; see {@link ResponseStream} for the flow-control, closing
 * and threading contract. The last chunk carries the finish reason and usage ({@link
 * Chunk#isLast()}). Once a chunk has been delivered, a failure ends the stream with a {@link
 * KvantException} and is never retried, so the chunks seen are always a prefix of one completion.
 *
 * <pre>{@code
 * try (TokenStream stream = client.stream(params)) {
 *   while (stream.hasNext()) {
 *     System.out.print(stream.next().text());
 *   }
 * }
 * }</pre>
 */
public interface TokenStream extends ResponseStream<Chunk> {}
