"""The detector: network, training, export, INT8 quantisation, evaluation, latency bench, edge thresholds."""
