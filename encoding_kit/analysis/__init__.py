"""Stage 4 and 5, statistics and brain maps: ceilings, tests, layer choice, ROI tables, figures, maps."""
