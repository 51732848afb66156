"""Shared infrastructure of every stage: storage (atomic writes, hashes, caches), device and precision,
progress bars, quiet output, argument validation."""
