"""Weights: where they come from (local path, directory, Hugging Face Hub), how they are
validated against the architecture, and the synthetic recipe the tests use."""
