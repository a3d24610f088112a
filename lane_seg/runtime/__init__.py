"""Running a model: engines (model -> logits), timing, frame -> mask, the shipped model."""
