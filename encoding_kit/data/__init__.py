"""Stage 1, data and time base: the course files, their checks, the ROIs, one time base, the story."""
