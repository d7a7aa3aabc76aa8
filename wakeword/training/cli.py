"""``wakeword train``: build a keyword model from synthetic speech, end to end."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from wakeword.config import add_command_parser
from wakeword.errors import ConfigError
from wakeword.pcm import SAMPLE_RATE

if TYPE_CHECKING:
    from wakeword.training.train import TrainConfig

log = logging.getLogger(__name__)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """``wakeword train``: light to build, torch and the voices are imported only in ``run``."""
    p = add_command_parser(
        subparsers,
        "train",
        help="train a keyword model from synthetic and real speech",
        description="Synthesise the keywords with offline voices (piper, espeak-ng, festival, flite; SVOX pico and "
        "RHVoice when installed), place them after real talkers and in simulated rooms and channels, add "
        "real negatives and real keyword cuts from the real-speech set's train speakers (data/real-speech, "
        "fetched from Debian packages), "
        "train a head on the speech-embedding front end (its last two blocks tuned with it), export both to "
        "ONNX, evaluate them on held-out voices and store each wake word's threshold, chosen on real "
        "speech never trained on. Needs the train extra: pip install 'wakeword[train]'.",
    )
    p.add_argument("keywords", nargs="+", help='keywords or phrases, e.g. "hey computer"')
    p.add_argument("--out", required=True, type=Path, help="model directory to write")
    p.add_argument("--wake-words", default=None, help="comma-separated keywords that fire by default (all)")
    p.add_argument("--samples", type=int, default=200, help="synthesised training clips per keyword (200)")
    p.add_argument("--unknown-samples", type=int, default=12, help="clips per negative word (12)")
    p.add_argument("--test-samples", type=int, default=30, help="held-out-voice test clips per keyword (30)")
    p.add_argument("--copies", type=int, default=3, help="augmented copies of each clip (3)")
    p.add_argument("--silence-clips", type=int, default=1500, help="noise-only clips (1500)")
    p.add_argument(
        "--speech-negatives",
        type=int,
        default=1500,
        help="clips of real background speech labelled unknown (1500; needs --background recordings)",
    )
    _add_voice_and_noise_options(p)
    _add_model_options(p)
    _add_real_speech_options(p)
    p.add_argument("--width", type=int, default=192, help="channels of the head's convolutions (192)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--force", action="store_true", help="overwrite a non-empty --out directory")
    return p


def _add_voice_and_noise_options(p: argparse.ArgumentParser) -> None:
    """Epochs, window, seed and cache; the voices and the background recordings."""
    p.add_argument("--epochs", type=int, default=16, help="training epochs (16)")
    p.add_argument("--window-s", type=float, default=None, help="model window; 1.5 s, or 2.0 s for phrases")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "wakeword", help="synthesis/feature cache")
    p.add_argument("--no-festival", action="store_true", help="skip festival's held-out test voices")
    p.add_argument(
        "--no-nonfree-voices",
        action="store_true",
        help="skip SVOX pico and RHVoice even when installed (Debian non-free; see scripts/install_voices.sh)",
    )
    p.add_argument(
        "--background",
        action="append",
        default=None,
        metavar="DIR",
        help="folder of real recordings mixed in as babble (default: Asterisk's Spanish and Italian "
        "prompts, Debian asterisk-core-sounds-*-wav); repeatable",
    )
    p.add_argument("--no-background", action="store_true", help="synthetic noise only")


def _add_model_options(p: argparse.ArgumentParser) -> None:
    """The front end's step and tuned blocks, and the training-time regularisers."""
    p.add_argument(
        "--embedding-step",
        type=int,
        default=16,
        choices=(8, 16, 24),
        help="mel frames between the embeddings the head sees; 16 (160 ms) halves a cold window's cost (16)",
    )
    p.add_argument(
        "--tune-blocks",
        type=int,
        default=2,
        choices=(0, 1, 2, 3),
        help="train the last N convolution blocks of the speech-embedding model with the head; 0 keeps it frozen (2)",
    )
    p.add_argument(
        "--mel-augment",
        type=float,
        default=0.5,
        metavar="P",
        help="share of training clips whose log-mel input is warped (vocal tract length) and, "
        "independently, band-masked (0.5; 0: off)",
    )
    p.add_argument(
        "--ema-decay",
        type=float,
        default=0.999,
        metavar="D",
        help="keep and export an exponential moving average of the weights (0.999; 0: off)",
    )
    p.add_argument(
        "--mixup",
        type=float,
        default=0.2,
        metavar="A",
        help="train on Beta(A, A) mixes of two clips and of their labels (0.2; 0: off)",
    )


def _add_real_speech_options(p: argparse.ArgumentParser) -> None:
    """The real-speech set, simulated rooms and channels, and the threshold choice."""
    p.add_argument(
        "--no-real-speech",
        action="store_true",
        help="train without the real-speech set (data/real-speech; fetched from Debian packages): no "
        "real talkers before the words, no real negatives or keyword cuts, no threshold choice",
    )
    p.add_argument(
        "--real-cache",
        type=Path,
        default=Path.home() / ".cache" / "wakeword" / "real-speech",
        help="where the real-speech set is fetched and decoded",
    )
    p.add_argument("--real-copies", type=int, default=30, help="augmented copies of each real keyword cut (30)")
    p.add_argument(
        "--context",
        type=float,
        default=0.5,
        metavar="P",
        help="share of word clips placed at the end of the window after real running speech (0.5)",
    )
    p.add_argument(
        "--rooms",
        type=float,
        default=0.5,
        metavar="P",
        help="share of clips in a simulated room (pyroomacoustics; replaces the synthetic reverb) (0.5)",
    )
    p.add_argument(
        "--channel",
        type=float,
        default=0.3,
        metavar="P",
        help="share of clips through a telephone band, cheap-microphone or clipping channel (0.3)",
    )
    p.add_argument(
        "--no-music", action="store_true", help="no music-like or TV-like audio among the noises and the negatives"
    )
    p.add_argument(
        "--target-fa-per-hour",
        type=float,
        default=0.5,
        help="false accepts per hour on the calibration speech that each wake word's stored threshold allows (0.5)",
    )


def run(args: argparse.Namespace) -> int:
    from wakeword.training.train import run as train

    config = train_config(args)

    def progress(message: str) -> None:
        print(f"wakeword train: {message}", file=sys.stderr, flush=True)

    metrics = train(config, progress)
    print(
        f"clean accuracy on held-out voices: {metrics['head.onnx:clean']:.4f} (fp32), "
        f"{metrics['head.int8.onnx:clean']:.4f} (int8); model in {args.out}"
    )
    return 0


def _keywords(names: list[str]) -> tuple[str, ...]:
    """The keywords as trained: stripped, lower case, each once and speakable."""
    keywords = tuple(k.strip().lower() for k in names if k.strip())
    if len(set(keywords)) != len(keywords):
        raise ConfigError("train: a keyword is listed twice")
    bad = [k for k in keywords if k.startswith("_") or not any(c.isalpha() for c in k)]
    if bad:
        raise ConfigError(f"train: not a speakable keyword: {', '.join(map(repr, bad))}")
    return keywords


def _negatives(keywords: tuple[str, ...]) -> tuple[str, ...]:
    """Negatives: common words, the Speech Commands words, and the parts of a phrase on their own."""
    from wakeword.training.dataset import SPEECH_COMMANDS, UNKNOWN_WORDS

    parts = tuple(w for k in keywords if " " in k for w in k.split())
    return tuple(dict.fromkeys(w for w in (*UNKNOWN_WORDS, *SPEECH_COMMANDS, *parts) if w not in keywords))


def _check_numbers(args: argparse.Namespace) -> None:
    """Counts at least 1, shares between 0 and 1, nothing negative."""
    for name in ("samples", "copies", "epochs", "width"):
        if getattr(args, name) < 1:
            raise ConfigError(f"train: --{name} must be at least 1")
    if not 0 <= args.mel_augment <= 1:
        raise ConfigError("train: --mel-augment must be between 0 and 1")
    if not 0 <= args.ema_decay < 1:
        raise ConfigError("train: --ema-decay must be at least 0 and below 1")
    if args.mixup < 0:
        raise ConfigError("train: --mixup must not be negative")
    for name in ("context", "rooms", "channel"):
        if not 0 <= getattr(args, name) <= 1:
            raise ConfigError(f"train: --{name} must be between 0 and 1")
    if args.real_copies < 0 or args.target_fa_per_hour < 0:
        raise ConfigError("train: --real-copies and --target-fa-per-hour must not be negative")


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The :class:`~wakeword.training.train.TrainConfig` that ``args`` describe, every option checked."""
    from wakeword.training.augment import AugmentConfig
    from wakeword.training.train import BACKGROUND_TRAIN_DIRS, TrainConfig

    keywords = _keywords(args.keywords)
    window_s = args.window_s or (2.0 if any(" " in k for k in keywords) else 1.5)
    wake = tuple(w.strip() for w in args.wake_words.split(",")) if args.wake_words else ()
    unknown_wake = [w for w in wake if w not in keywords]
    if unknown_wake:
        raise ConfigError(f"train: --wake-words {', '.join(unknown_wake)} not among the keywords")
    _check_numbers(args)
    background = () if args.no_background else tuple(args.background or BACKGROUND_TRAIN_DIRS)
    return TrainConfig(
        background_dirs=background,
        keywords=keywords,
        out=args.out,
        wake_words=wake,
        cache_dir=args.cache,
        seed=args.seed,
        per_keyword=args.samples,
        per_unknown_word=args.unknown_samples,
        test_per_keyword=args.test_samples,
        unknown_words=_negatives(keywords),
        copies=args.copies,
        silence_clips=args.silence_clips,
        epochs=args.epochs,
        speech_negatives=args.speech_negatives,
        window_samples=int(round(window_s * SAMPLE_RATE)),
        festival=not args.no_festival,
        nonfree_voices=not args.no_nonfree_voices,
        threads=args.threads,
        force=args.force,
        embedding_step=args.embedding_step,
        width=args.width,
        tune_blocks=args.tune_blocks,
        ema_decay=args.ema_decay,
        mixup=args.mixup,
        real_speech=not args.no_real_speech,
        real_cache=args.real_cache,
        real_copies=args.real_copies,
        target_fa_per_hour=args.target_fa_per_hour,
        augment=AugmentConfig(
            mel_warp_p=args.mel_augment,
            mel_mask_p=args.mel_augment,
            context_p=0.0 if args.no_real_speech else args.context,
            room_p=0.0 if args.no_real_speech else args.rooms,
            channel_p=args.channel,
            music=not args.no_music,
        ),
    )
