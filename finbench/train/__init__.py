"""Train stage: recipes (schema, validation, compilation to Axolotl/DeepSpeed), the run, models."""
