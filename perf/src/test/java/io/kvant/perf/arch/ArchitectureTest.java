package io.kvant.perf.arch;

import static org.assertj.core.api.Assertions.assertThat;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import io.kvant.perf.arch.ModuleRules.Module;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The module graph of docs/ARCHITECTURE.md, checked over the compiled main classes of every module
 * (this module's test classpath holds them all, the server's too): no package cycles anywhere; each
 * module depends only on the modules below it, and only on the packages they export.
 */
class ArchitectureTest {
  static final List<Module> MODULES =
      List.of(
          new Module("proto", "io.kvant.api", Set.of(), Set.of("io.kvant.api.v1")),
          new Module(
              "engine",
              "io.kvant.engine",
              Set.of(),
              Set.of(
                  "io.kvant.engine.format",
                  "io.kvant.engine.format.gguf",
                  "io.kvant.engine.format.llama2c",
                  "io.kvant.engine.format.safetensors",
                  "io.kvant.engine.forward",
                  "io.kvant.engine.generate",
                  "io.kvant.engine.kv",
                  "io.kvant.engine.model",
                  "io.kvant.engine.sample",
                  "io.kvant.engine.sched",
                  "io.kvant.engine.tensor",
                  "io.kvant.engine.tensor.packed",
                  "io.kvant.engine.tokenizer")),
          new Module(
              "quant",
              "io.kvant.quant",
              Set.of("engine"),
              Set.of(
                  "io.kvant.quant.artifact", "io.kvant.quant.encoding", "io.kvant.quant.quantize")),
          new Module(
              "engine-cuda",
              "io.kvant.cuda",
              Set.of("engine"),
              Set.of("io.kvant.cuda", "io.kvant.cuda.device", "io.kvant.cuda.driver")),
          new Module(
              "reload-agent",
              "io.kvant.reload",
              Set.of("engine", "quant"),
              Set.of("io.kvant.reload", "io.kvant.reload.bucket")),
          new Module(
              "server",
              "io.kvant.server",
              Set.of("proto", "engine", "engine-cuda", "quant", "reload-agent"),
              Set.of()),
          new Module("client-sdk", "io.kvant.client", Set.of("proto"), Set.of("io.kvant.client")),
          new Module(
              "perf",
              "io.kvant.perf",
              Set.of("client-sdk", "proto", "engine", "engine-cuda", "quant"),
              Set.of()));

  static JavaClasses main;

  @BeforeAll
  static void importMainClasses() {
    // Other modules arrive as jars (or target/classes); their test jars must not count.
    ImportOption noTests =
        location ->
            !location.contains("/test-classes/")
                && !location.contains("-tests.jar")
                && !location.contains("/io/kvant/perf/arch/");
    main = new ClassFileImporter().withImportOption(noTests).importPackages("io.kvant");
  }

  @Test
  void everyModuleIsOnTheClasspath() {
    for (Module m : MODULES) {
      assertThat(main.stream().filter(c -> m.owns(c.getPackageName())).count())
          .as("classes of module %s", m.name())
          .isPositive();
    }
  }

  @Test
  void noPackageCycles() {
    assertThat(ModuleRules.cycles(main, "io.kvant")).isEmpty();
  }

  @Test
  void modulesUseOnlyLowerModulesAndTheirExportedPackages() {
    assertThat(new ModuleRules(MODULES).violations(main)).isEmpty();
  }

  /** The rules are not vacuous: fixture packages with a cycle and an internal use are caught. */
  @Test
  void theRulesCatchACycleAndAReachIntoInternals() {
    JavaClasses fixture = new ClassFileImporter().importPackages("io.kvant.perf.arch.fixture");
    assertThat(ModuleRules.cycles(fixture, "io.kvant.perf.arch.fixture"))
        .anySatisfy(d -> assertThat(d).contains("cycle.a").contains("cycle.b"));
    ModuleRules rules =
        new ModuleRules(
            List.of(
                new Module(
                    "low",
                    "io.kvant.perf.arch.fixture.low",
                    Set.of(),
                    Set.of("io.kvant.perf.arch.fixture.low.api")),
                new Module("high", "io.kvant.perf.arch.fixture.high", Set.of("low"), Set.of())));
    assertThat(rules.violations(fixture))
        .singleElement()
        .asString()
        .contains("fixture.high.Reacher")
        .contains("fixture.low.internal.Hidden")
        .contains("package not exported");
  }
}
