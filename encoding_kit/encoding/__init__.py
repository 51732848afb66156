"""Stage 3, encoding models: gapped cross-validation, delays, ridge, banded ridge, networks, results."""
