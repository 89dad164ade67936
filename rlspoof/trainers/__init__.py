"""Trainers built on transformers.Trainer: SFT (and, as they land, GRPO, hybrid, post-training)."""
