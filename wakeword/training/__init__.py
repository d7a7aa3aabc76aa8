"""Training pipeline for keyword models (the ``train`` extra: torch, piper-tts).

Nothing here is imported by the runtime path.
"""
