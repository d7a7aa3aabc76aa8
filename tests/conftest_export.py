"""Tiny random Hugging Face audio classifiers built from configs, and their exports.

The hub is unreachable in CI, so every architecture the exporter supports is
tested with a model built from its config: the code path is the real one, the
weights are random. Imported by test_export, test_onnx_classifier and
test_classify_cli (not a pytest conftest: it needs torch, which those tests
skip without).

Checkpoints and exports are cached under one directory per test session, so
each is built once however many test files use it.
"""

from __future__ import annotations

from pathlib import Path

# The 35 labels of MIT/ast-finetuned-speech-commands-v2, in id order (alphabetical).
SPEECH_COMMANDS_V2 = (
    "backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward", "four", "go",
    "happy", "house", "learn", "left", "marvin", "nine", "no", "off", "on", "one", "right", "seven",
    "sheila", "six", "stop", "three", "tree", "two", "up", "visual", "wow", "yes", "zero",
)  # fmt: skip
# The 14 MINDS-14 intents (anton-l/xtreme_s_xlsr_300m_minds14).
MINDS14_INTENTS = (
    "abroad", "address", "app_error", "atm_limit", "balance", "business_loan", "card_issues",
    "cash_deposit", "direct_debit", "freeze", "high_value_payment", "joint_account",
    "latest_transactions", "pay_bill",
)  # fmt: skip
# A few FLEURS language ids; the real lang-id head has 102.
FLEURS_LANGUAGES = ("af_za", "cmn_hans_cn", "de_de", "en_us", "es_419", "fr_fr", "hi_in", "sw_ke")
# Speech Commands AST normalisation (AST recipe / transformers' conversion script)
SPEECH_COMMANDS_MEAN, SPEECH_COMMANDS_STD = -6.845978, 5.5654526

KINDS = ("ast", "wav2vec2", "whisper")


def _labels(names: tuple[str, ...]) -> dict:
    return {"id2label": dict(enumerate(names)), "label2id": {n: i for i, n in enumerate(names)}}


def build_checkpoint(kind: str, out: Path, seed: int = 0, **overrides) -> Path:
    """Save a tiny random ``kind`` checkpoint (model + feature extractor) into ``out``; returns ``out``."""
    import torch
    import transformers as tf

    torch.manual_seed(seed)
    if kind == "ast":  # tiny AST with the Speech Commands label set and normalisation
        config = tf.ASTConfig(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            num_mel_bins=64,
            max_length=100,
            **_labels(SPEECH_COMMANDS_V2),
            **overrides,
        )
        extractor = tf.ASTFeatureExtractor(
            num_mel_bins=64,
            max_length=100,
            mean=SPEECH_COMMANDS_MEAN,
            std=SPEECH_COMMANDS_STD,
        )
        model = tf.ASTForAudioClassification(config)
    elif kind == "ast-full":  # MIT/ast-finetuned-speech-commands-v2's geometry, random weights
        config = tf.ASTConfig(
            hidden_size=768,
            num_hidden_layers=12,
            num_attention_heads=12,
            intermediate_size=3072,
            num_mel_bins=128,
            max_length=128,
            **_labels(SPEECH_COMMANDS_V2),
            **overrides,
        )
        extractor = tf.ASTFeatureExtractor(
            num_mel_bins=128,
            max_length=128,
            mean=SPEECH_COMMANDS_MEAN,
            std=SPEECH_COMMANDS_STD,
        )
        model = tf.ASTForAudioClassification(config)
    elif kind == "wav2vec2":  # XLS-R layout (layer-norm conv stack, stable layer norm), MINDS-14 intents
        config = tf.Wav2Vec2Config(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            conv_dim=(32, 32, 32),
            conv_kernel=(10, 3, 3),
            conv_stride=(5, 2, 2),
            conv_bias=True,
            feat_extract_norm="layer",
            do_stable_layer_norm=True,
            num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=2,
            classifier_proj_size=16,
            **_labels(MINDS14_INTENTS),
            **overrides,
        )
        extractor = tf.Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True)
        model = tf.Wav2Vec2ForSequenceClassification(config)
    elif kind == "whisper":  # Whisper encoder + classification head, as the FLEURS lang-id checkpoint
        config = tf.WhisperConfig(
            d_model=32,
            encoder_layers=2,
            decoder_layers=1,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=64,
            decoder_ffn_dim=64,
            num_mel_bins=80,
            vocab_size=64,
            max_target_positions=16,
            classifier_proj_size=16,
            **_labels(FLEURS_LANGUAGES),
            **overrides,
        )
        extractor = tf.WhisperFeatureExtractor(feature_size=80)
        model = tf.WhisperForAudioClassification(config)
    else:
        raise ValueError(kind)
    model.eval()
    model.save_pretrained(out)
    extractor.save_pretrained(out)
    return out


def checkpoint(kind: str, root: Path) -> Path:
    path = root / f"{kind}-checkpoint"
    if not (path / "config.json").exists():
        build_checkpoint(kind, path)
    return path


def exported(kind: str, root: Path, **options) -> Path:
    """The export of the tiny ``kind`` checkpoint (built and exported once per session)."""
    from wakeword.export.command import export

    path = root / f"{kind}-onnx"
    if not (path / "manifest.json").exists():
        export(str(checkpoint(kind, root)), path, force=True, **options)
    return path


def session_root(tmp_path_factory) -> Path:
    """One cache directory for the whole test session, shared by every test file."""
    root = tmp_path_factory.getbasetemp() / "tiny-hf-models"
    root.mkdir(exist_ok=True)
    return root
