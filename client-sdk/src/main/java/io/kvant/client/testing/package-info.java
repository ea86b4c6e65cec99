/**
 * A test kit for code that uses the kvant client: {@link io.kvant.client.testing.FakeKvantServer},
 * a scripted {@code Generation} server on a loopback port.
 */
package io.kvant.client.testing;
