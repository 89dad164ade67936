"""rlspoof: fine-tune speech deepfake detectors with reinforcement learning and compare with SFT."""

__version__ = "0.1.0"
