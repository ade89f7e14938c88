"""Training data: dataset readers, class remapping and splits, label checks, synthetic generators."""
