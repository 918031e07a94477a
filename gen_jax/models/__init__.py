"""Flax Linen modules only: no losses, no optimizers."""
