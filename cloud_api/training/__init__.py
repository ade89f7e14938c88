"""Training jobs of the learning loop: a job store, a runner that fine-tunes the model in service on a dataset in a
worker process, evaluates, quantizes and registers the new version only when it is better."""
