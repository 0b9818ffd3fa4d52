"""Losses: CenterNet heatmap / box losses and mask losses."""
