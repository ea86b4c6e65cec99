package io.kvant.perf.arch;

import com.tngtech.archunit.core.domain.Dependency;
import com.tngtech.archunit.core.domain.JavaClass;
import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.lang.EvaluationResult;
import com.tngtech.archunit.library.dependencies.SlicesRuleDefinition;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;

/**
 * The two checks of the module graph, over compiled classes: package cycles, and dependencies that
 * cross modules. A cross-module dependency is allowed only toward a module the origin declares it
 * uses, and only into a package that module exports; anything else is reaching into another
 * module's internals.
 */
final class ModuleRules {
  /**
   * A module of the build.
   *
   * @param name its Maven module
   * @param root its root package (every class of the module is in it or below it)
   * @param uses names of the modules it may depend on
   * @param exports the packages other modules may use (empty: none, an application)
   */
  record Module(String name, String root, Set<String> uses, Set<String> exports) {
    boolean owns(String pkg) {
      return pkg.equals(root) || pkg.startsWith(root + ".");
    }
  }

  private final List<Module> modules;

  ModuleRules(List<Module> modules) {
    this.modules = List.copyOf(modules);
  }

  /** Every package cycle among the packages under {@code root}, as ArchUnit reports them. */
  static List<String> cycles(JavaClasses classes, String root) {
    EvaluationResult r =
        SlicesRuleDefinition.slices()
            .matching(root + ".(**)")
            .should()
            .beFreeOfCycles()
            .allowEmptyShould(true)
            .evaluate(classes);
    return r.getFailureReport().getDetails();
  }

  /** Every dependency that crosses modules against the rules, one line each. */
  Set<String> violations(JavaClasses classes) {
    Set<String> out = new TreeSet<>();
    for (JavaClass c : classes) {
      Optional<Module> from = moduleOf(c.getPackageName());
      if (from.isEmpty()) {
        continue;
      }
      for (Dependency d : c.getDirectDependenciesFromSelf()) {
        JavaClass target = d.getTargetClass().getBaseComponentType();
        Optional<Module> to = moduleOf(target.getPackageName());
        if (to.isEmpty() || to.get().equals(from.get())) {
          continue;
        }
        String edge = from.get().name() + " -> " + to.get().name() + ": " + c.getName();
        if (!from.get().uses().contains(to.get().name())) {
          out.add(edge + " uses " + target.getName() + " (module not allowed)");
        } else if (!to.get().exports().contains(target.getPackageName())) {
          out.add(edge + " uses " + target.getName() + " (package not exported)");
        }
      }
    }
    return out;
  }

  private Optional<Module> moduleOf(String pkg) {
    return modules.stream().filter(m -> m.owns(pkg)).findFirst();
  }
}
