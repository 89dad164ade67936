"""The ``evaluate`` metric script of rlspoof; load it with ``rlspoof.metrics.load_evaluate_metric()``."""
