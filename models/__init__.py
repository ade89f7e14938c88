"""FieldLine models: data (readers, generators), detect (train, export, quantise, evaluate), anomaly, cards, cli."""
