"""Report figures (DET curves, score histograms, training curves, forgetting bars, heatmaps)."""
