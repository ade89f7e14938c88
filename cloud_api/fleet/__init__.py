"""Fleet console: the model registry, device commands through the broker, and the audit log."""
