"""Decoding: linear identification and deep decoders with a leak-free hyperparameter search."""
