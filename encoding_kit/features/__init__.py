"""Stimulus features: text and audio models per layer, classic baselines, and the feature cache."""
