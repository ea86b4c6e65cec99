package io.kvant.server.agent;

import io.kvant.engine.forward.ComputeBackend;
import io.kvant.engine.forward.ForwardPass;
import io.kvant.engine.model.Model;
import io.kvant.engine.sched.TransformerModel;
import io.kvant.reload.ServingView;
import io.kvant.reload.StagedVersion;
import io.kvant.reload.SwapMode;
import io.kvant.reload.SwapTarget;
import io.kvant.server.model.ModelVersion;
import io.kvant.server.model.ServedModel;
import io.kvant.server.model.SwapCoordinator;
import io.kvant.server.model.SwapException;

/**
 * The reload agent's view of one served model: the serving version's weights, and swaps and
 * rollbacks through the server's {@link SwapCoordinator} (so agent swaps and admin swaps are
 * serialized and publish the same SWAPPED / ROLLED_BACK events).
 *
 * <p>A staged version becomes a {@link ModelVersion} whose model shares the serving version's
 * config and tokenizer and whose weights are the staged ones (unchanged tensors are the serving
 * version's objects).
 */
public final class ServerSwapTarget implements SwapTarget {
  private final ServedModel model;
  private final SwapCoordinator swaps;
  private final ComputeBackend backend;

  /**
   * @param backend where the swapped-in versions run (CPU or CUDA): a version's forward pass is
   *     made there, so on a GPU only its changed tensors are uploaded
   */
  public ServerSwapTarget(ServedModel model, SwapCoordinator swaps, ComputeBackend backend) {
    this.model = model;
    this.swaps = swaps;
    this.backend = backend;
  }

  @Override
  public ServingView serving() {
    ModelVersion v = model.serving();
    Model m = v.model();
    return new ServingView(v.id(), v.recipe(), m.config(), m.tokenizer(), m.weights());
  }

  @Override
  public void swap(StagedVersion staged, SwapMode mode, long startMillis)
      throws SwapRefusedException {
    Model base = model.serving().model();
    Model m = base.withWeights(staged.weights());
    ForwardPass t = backend.load(m.config(), m.weights());
    ModelVersion next =
        new ModelVersion(
            staged.id(),
            m,
            new TransformerModel(staged.id(), t, m.tokenizer()),
            staged.recipe(),
            staged.parent(),
            staged.digest());
    try {
      swaps.swap(model, next, mode, startMillis, staged.recalibrated());
    } catch (SwapException e) {
      throw new SwapRefusedException(e.getMessage());
    }
  }

  @Override
  public void rollback() throws SwapRefusedException {
    try {
      swaps.rollback(model.name());
    } catch (SwapException e) {
      throw new SwapRefusedException(e.getMessage());
    }
  }

  @Override
  public void dropStandby() {
    model.dropStandby();
  }
}
