"""The surface-anomaly model (fitted on defect-free images only): knn, seg and patchcore methods."""
