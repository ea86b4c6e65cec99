/**
 * The Java client SDK of kvant: {@link io.kvant.client.KvantClient} for generation, {@link
 * io.kvant.client.KvantAdmin} for model administration, {@link io.kvant.client.GenerateParams} for
 * requests, and the {@link io.kvant.client.KvantException} hierarchy for failures.
 */
package io.kvant.client;
