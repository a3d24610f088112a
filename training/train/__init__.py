"""Training: configuration, data and augmentation, losses, schedule, and the trainer."""
