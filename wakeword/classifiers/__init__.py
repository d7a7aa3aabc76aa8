"""Classifiers: the seam (:class:`Classifier`, :class:`ModelInfo`), the model registry and the backends.

``load_classifier(model)`` accepts ``default``, a model directory of any kind or
``NAME[:SPEC]``; the backends are imported only when a model asks for them.
"""

from wakeword.classifiers.base import Classifier, ModelInfo, default_keywords
from wakeword.classifiers.registry import load_classifier, register_backend

__all__ = ["Classifier", "ModelInfo", "default_keywords", "load_classifier", "register_backend"]
