"""FieldLine models: synthetic data, training, export, quantisation, evaluation."""
