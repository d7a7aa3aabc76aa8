"""The streaming core's parts: ring buffer, voice-activity gate, detector, command capture."""
