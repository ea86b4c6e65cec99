package io.kvant.server.model;

import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/** The models a server serves, by name; the first one registered is the default. */
public final class ModelRegistry {
  private final Map<String, ServedModel> models = new LinkedHashMap<>();

  public synchronized void add(ServedModel model) {
    if (models.putIfAbsent(model.name(), model) != null) {
      throw new IllegalArgumentException("model '" + model.name() + "' is already registered");
    }
  }

  /** The model called {@code name}, or the default one when {@code name} is empty. */
  public synchronized Optional<ServedModel> find(String name) {
    if (name == null || name.isEmpty()) {
      return models.values().stream().findFirst();
    }
    return Optional.ofNullable(models.get(name));
  }

  public synchronized Collection<ServedModel> all() {
    return java.util.List.copyOf(models.values());
  }
}
