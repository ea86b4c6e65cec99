package io.kvant.quant.quantize;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kvant.engine.model.LayerWeights;
import io.kvant.engine.model.Model;
import io.kvant.engine.model.ModelWeights;
import io.kvant.engine.model.Role;
import io.kvant.engine.model.TensorNames;
import io.kvant.engine.tensor.ComputePool;
import io.kvant.engine.tensor.Tensor;
import io.kvant.quant.encoding.WeightFormat;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Sensitivity report: for every layer and role (and lm_head), the output error caused by quantizing
 * that one tensor as the recipe says while everything else stays full precision. Tensors at the top
 * of the table (largest KL) are the ones to keep in higher precision.
 *
 * <p>AWQ roles are measured with MSE clipping instead: AWQ's scale folds touch the neighbouring
 * tensors, so it has no single-tensor effect.
 */
public final class Sensitivity {
  /** One row: the tensor, its spec and the damage it does alone. */
  public record Row(int layer, Role role, String tensor, String spec, double meanKl, double top1) {}

  private final ComputePool pool;
  private final Evaluator evaluator;

  public Sensitivity(ComputePool pool, Evaluator evaluator) {
    this.pool = pool;
    this.evaluator = evaluator;
  }

  /** Rows sorted by descending KL, as JSON: {@code {"recipe":..., "rows":[...]}}. */
  public ObjectNode report(Model model, Recipe recipe, Calibration calibration, Calibration eval) {
    List<Row> rows = rows(model, recipe, calibration, eval);
    ObjectNode root = JsonNodeFactory.instance.objectNode();
    root.put("recipe", recipe.name());
    ArrayNode arr = root.putArray("rows");
    for (Row r : rows) {
      ObjectNode o = arr.addObject();
      o.put("layer", r.layer());
      o.put("role", r.role().jsonName());
      o.put("tensor", r.tensor());
      o.put("spec", r.spec());
      o.put("mean_kl", r.meanKl());
      o.put("top1_agreement", r.top1());
    }
    return root;
  }

  /** The rows, sorted by descending KL. */
  public List<Row> rows(Model model, Recipe recipe, Calibration calibration, Calibration eval) {
    Recipe r = recipe.needsActivations() ? recipe.withMethod(Method.MSE) : recipe;
    QuantizedModel q =
        new Quantizer(java.time.Clock.systemUTC(), "sensitivity").run(model, r, calibration);
    ModelWeights src = model.weights();
    ModelWeights qw = q.model().weights();
    List<Row> out = new ArrayList<>();
    for (int l = 0; l < src.layers().size(); l++) {
      for (Role role : List.of(Role.Q, Role.K, Role.V, Role.O, Role.GATE, Role.UP, Role.DOWN)) {
        if (r.spec(role).format() == WeightFormat.FULL) {
          continue;
        }
        List<LayerWeights> layers = new ArrayList<>(src.layers());
        layers.set(l, replace(src.layers().get(l), role, get(qw.layers().get(l), role)));
        ModelWeights w = new ModelWeights(src.embedding(), layers, src.outputNorm(), src.output());
        Evaluator.Result res = evaluator.compare(src, w, eval.sequences());
        out.add(
            new Row(
                l,
                role,
                TensorNames.matrix(l, role),
                r.spec(role).label(),
                res.meanKl(),
                res.top1Agreement()));
      }
    }
    if (r.spec(Role.LM_HEAD).format() != WeightFormat.FULL) {
      ModelWeights w =
          new ModelWeights(src.embedding(), src.layers(), src.outputNorm(), qw.output());
      Evaluator.Result res = evaluator.compare(src, w, eval.sequences());
      out.add(
          new Row(
              -1,
              Role.LM_HEAD,
              TensorNames.OUTPUT,
              r.spec(Role.LM_HEAD).label(),
              res.meanKl(),
              res.top1Agreement()));
    }
    out.sort(Comparator.comparingDouble(Row::meanKl).reversed());
    return out;
  }

  static Tensor get(LayerWeights w, Role r) {
    return switch (r) {
      case Q -> w.wq();
      case K -> w.wk();
      case V -> w.wv();
      case O -> w.wo();
      case GATE -> w.wGate();
      case UP -> w.wUp();
      case DOWN -> w.wDown();
      default -> throw new IllegalArgumentException(r.toString());
    };
  }

  static LayerWeights replace(LayerWeights w, Role r, Tensor t) {
    return new LayerWeights(
        w.attnNorm(),
        r == Role.Q ? t : w.wq(),
        r == Role.K ? t : w.wk(),
        r == Role.V ? t : w.wv(),
        r == Role.O ? t : w.wo(),
        w.qBias(),
        w.kBias(),
        w.vBias(),
        w.ffnNorm(),
        r == Role.GATE ? t : w.wGate(),
        r == Role.UP ? t : w.wUp(),
        r == Role.DOWN ? t : w.wDown());
  }
}
