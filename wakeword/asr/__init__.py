"""Speech recognition for the hand-off: the transcriber seam, its worker thread and the Whisper backends."""

from wakeword.asr.base import TRANSCRIBERS, Transcriber, TranscriptResult, make_transcriber

__all__ = ["TRANSCRIBERS", "Transcriber", "TranscriptResult", "make_transcriber"]
