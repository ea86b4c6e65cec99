package io.kvant.reload;

import io.kvant.engine.model.Role;
import io.kvant.engine.model.TensorNames;
import io.kvant.engine.tensor.Tensor;
import io.kvant.quant.encoding.WeightFormat;
import io.kvant.quant.quantize.QuantSpec;
import io.kvant.quant.quantize.Recipe;
import io.kvant.quant.quantize.WeightQuantizer;
import java.util.List;

/**
 * Re-quantizes tensors with the quantization module's built-in recipes ({@code w8}, {@code w4g128},
 * {@code w4g32}, {@code fp8}, {@code mixed}, {@code q4_0}, {@code f32}) plus {@code none} (serve as
 * published). Each tensor's role comes from its name; scales are chosen with the spec's range
 * method over the weights (methods that weight columns by activation importance, AWQ/MSE, run here
 * with uniform importance).
 */
public final class RecipeRequantizer implements Requantizer {
  @Override
  public boolean knows(String recipe) {
    return recipe.equals("none") || Recipe.BUILTIN.contains(recipe);
  }

  @Override
  public boolean quantizes(String recipe, String name, Tensor fp) {
    if (recipe.equals("none")) {
      return false;
    }
    QuantSpec spec = Recipe.builtin(recipe).spec(role(name));
    return switch (spec.format()) {
      case FULL -> false;
      case Q4_0, Q8_0 -> fp.cols() % 32 == 0;
      default -> true;
    };
  }

  @Override
  public Quantized quantize(String recipe, String name, Tensor fp, List<int[]> calibration) {
    QuantSpec spec = Recipe.builtin(recipe).spec(role(name));
    WeightQuantizer.Result r =
        WeightQuantizer.quantize(name, TensorData.values(fp), fp.rows(), fp.cols(), spec, null);
    int bits =
        switch (spec.format()) {
          case INT4, Q4_0 -> 4;
          case FULL -> 32;
          default -> 8;
        };
    String scheme =
        (spec.symmetric() ? "symmetric/" : "asymmetric/")
            + (spec.format() == WeightFormat.INT4
                    || spec.format() == WeightFormat.Q4_0
                    || spec.format() == WeightFormat.Q8_0
                ? "per_block"
                : spec.perTensor() ? "per_tensor" : "per_channel");
    return new Quantized(r.tensor(), bits, spec.groupSize(), scheme, spec.method().jsonName());
  }

  /** The recipe role of a kvant tensor name (the engine's {@link TensorNames} owns them). */
  static Role role(String name) {
    return TensorNames.roleOf(name);
  }
}
