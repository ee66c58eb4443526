"""Numerics only: code generation from the model and batched integration between dose events."""
