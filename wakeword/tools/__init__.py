"""Measurement: ``wakeword bench`` and ``wakeword eval``, their metrics, probes and operation counts."""
