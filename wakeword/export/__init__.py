"""``wakeword export``: Hugging Face audio classifiers and Whisper to (quantized) ONNX with optimum.

Needs the export extra (torch, transformers, optimum); nothing on the runtime path imports this package.
"""
