"""``wakeword train``: synthesise, augment, embed, train a head, export to ONNX, evaluate.

The head is a small MLP over the frozen speech-embedding front end's
embeddings of a 1.5 s window (9 × 96 values). Every step is deterministic for
a seed; synthesis and features are cached under ``cache_dir``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import shutil
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from wakeword.classifiers.speech_embedding import (
    ARCHITECTURE,
    EMBEDDING_STRIDE,
    EmbeddingFrontEnd,
    embedding_count,
    every_step,
)
from wakeword.errors import ConfigError, DependencyError
from wakeword.manifest import sha256_file
from wakeword.pcm import SAMPLE_RATE
from wakeword.training.augment import (
    AugmentConfig,
    Background,
    RoomBank,
    add_noise,
    augment_mel,
    augment_word,
    channel,
    music_segment,
    place,
    rms,
    silence_clip,
)
from wakeword.training.dataset import (
    SILENCE,
    SPEECH_COMMANDS,
    UNKNOWN,
    UNKNOWN_WORDS,
    Item,
    plan,
    plan_digest,
    synthesise_all,
    synthesise_item,
)

log = logging.getLogger(__name__)

SPEECH_COMMANDS_SET = frozenset(SPEECH_COMMANDS)
# the mel model, its cut before the window-wide floor (the streaming front end's) and the embedding model
FRONT_END_FILES = {
    "melspectrogram": "melspectrogram.onnx",
    "melspectrogram_raw": "melspectrogram_raw.onnx",
    "embedding": "embedding_model.onnx",
}
BACKGROUND_TRAIN_DIRS = ("/usr/share/asterisk/sounds/es_MX_f_Allison", "/usr/share/asterisk/sounds/it_IT_m_Carlo")


def front_end_dir() -> Path:
    """The shipped speech-embedding front end (``models/speech-embedding``)."""
    from wakeword.classifiers.shipped import models_dir

    return models_dir() / "speech-embedding"


@dataclass(frozen=True)
class TrainConfig:
    keywords: tuple[str, ...]
    out: Path
    wake_words: tuple[str, ...] = ()
    cache_dir: Path = Path.home() / ".cache" / "wakeword"
    seed: int = 0
    per_keyword: int = 200
    per_unknown_word: int = 12
    test_per_keyword: int = 30
    unknown_words: tuple[str, ...] = UNKNOWN_WORDS
    copies: int = 3
    silence_clips: int = 1500
    speech_negatives: int = 1500  # clips of real speech (the background recordings) labelled _unknown_
    epochs: int = 40
    width: int = 192
    window_samples: int = 24_000
    hop_ms: int = 80
    # mel frames between the embeddings the head sees: 16 (160 ms) halves the front-end work of a cold window
    embedding_step: int = 16
    festival: bool = True
    flite: bool = True
    nonfree_voices: bool = True  # SVOX pico and RHVoice, when installed from Debian non-free
    # convolution blocks at the end of the speech-embedding model trained with the head (0: frozen front end)
    tune_blocks: int = 2
    # decay of an exponential moving average of the weights, evaluated and exported in their place (0: off)
    ema_decay: float = 0.0
    # Beta(a, a) mixup of the training inputs (the activations at the cut, or the embeddings) and targets (0: off)
    mixup: float = 0.0
    background_dirs: tuple[str, ...] = BACKGROUND_TRAIN_DIRS
    # the real-speech set's train speakers (``data/real-speech``): context before words, negatives, and the
    # real keyword cuts as positives (each in ``real_copies`` augmented copies); its calibration speakers
    # and the Asterisk prompts never trained on choose each wake word's threshold
    real_speech: bool = False
    real_cache: Path = Path.home() / ".cache" / "wakeword" / "real-speech"
    real_copies: int = 30
    target_fa_per_hour: float = 0.5
    threads: int = 2
    force: bool = False
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        if not self.keywords:
            raise ConfigError("train: at least one keyword is needed")
        if embedding_count(self.window_samples) < 1:
            raise ConfigError("train: window too short for the front end")
        if self.embedding_step <= 0 or self.embedding_step % EMBEDDING_STRIDE:
            raise ConfigError(f"train: embedding_step must be a positive multiple of {EMBEDDING_STRIDE} mel frames")
        if self.tune_blocks not in (0, 1, 2, 3):
            raise ConfigError("train: --tune-blocks must be 0, 1, 2 or 3")
        if self.hop_ms % 80:
            raise ConfigError("train: hop_ms must be a multiple of 80 ms (the embedding stride)")
        if self.augment.clip_samples != self.window_samples:  # training clips are exactly one model window
            object.__setattr__(self, "augment", replace(self.augment, clip_samples=self.window_samples))


def _background(paths: Sequence[str]) -> Background | None:
    files = [p for d in paths if Path(d).is_dir() for p in sorted(Path(d).rglob("*.wav"))]
    if not files:
        log.warning("no real-speech background found (%s); using synthetic noise only", ", ".join(paths))
        return None
    return Background.from_files(files)


def _label_index(labels: Sequence[str]) -> dict[str, int]:
    return {label: i for i, label in enumerate(labels)}


@dataclass
class RealTraining:
    """What the real-speech set's training speakers give a training run."""

    context: Background  # their running speech, words containing no keyword
    cuts: list[tuple[str, np.ndarray]]  # (keyword, audio) said by them
    rooms: RoomBank | None = None


# long: one split's recipe; the counts are keywords with defaults so callers (build_clips, tests) name only theirs
def iter_clips(
    config: TrainConfig,
    items: Sequence[Item],
    split: str,
    background: Background | None,
    labels: Sequence[str],
    copies: int,
    snr_db: float | None = None,
    noise_kind: str | None = None,
    silence: int = 0,
    seed_offset: int = 0,
    speech: int = 0,
    real: RealTraining | None = None,
) -> Iterator[tuple[np.ndarray, int]]:
    """(clip, label index) of one split, one at a time. Train clips are augmented; test clips placed clean
    (+ fixed noise). Deterministic for a seed: the same calls give the same clips."""
    # crc32, not hash(): str hashes are salted per process, so every run drew other clips
    rng = np.random.default_rng([config.seed, seed_offset, zlib.crc32(split.encode()) % 1000])
    index = _label_index(labels)
    for item in items:
        if item.split != split:
            continue
        word = synthesise_item(config.cache_dir, item)
        for _ in range(copies):
            if split == "test":
                clip = place(rng, word, config.window_samples)
                if snr_db is not None:
                    clip = np.clip(add_noise(rng, clip, snr_db, background, noise_kind), -1, 1).astype(np.float32)
            else:
                clip = augment_word(rng, word, config.augment, background, *_real_parts(real))
            yield clip, index[item.label]
    if real is not None and split != "test":
        for n, (word_label, cut) in enumerate(real.cuts):
            # a tenth of the cuts (by order) validate, the rest train
            if (n % 10 == 0) != (split == "val"):
                continue
            for _ in range(config.real_copies if split == "train" else 1):
                yield augment_word(rng, cut, config.augment, background, *_real_parts(real)), index[word_label]
    for _ in range(silence):
        yield silence_clip(rng, config.augment, background), index[SILENCE]
    for _ in range(silence // 2 if config.augment.music else 0):  # music and TV-like audio: never a keyword
        clip = music_segment(rng, config.window_samples) * 10 ** (rng.uniform(-30, -6) / 20)
        if background is not None and rng.random() < 0.5:
            clip += background.babble(rng, config.window_samples, talkers=1) * 10 ** (rng.uniform(-30, -6) / 20)
        yield np.clip(clip, -1, 1).astype(np.float32), index[UNKNOWN]
    speakers = [b for b in (background, real.context if real else None) if b is not None]
    for n in range(speech if speakers else 0):  # real running speech is the commonest thing to ignore
        source = speakers[n % len(speakers)]
        level = 10 ** (rng.uniform(-30, -6) / 20)
        clip = source.babble(rng, config.window_samples, talkers=1) * level
        if real is not None and real.rooms is not None and rng.random() < config.augment.room_p:
            clip = real.rooms.apply(rng, clip)
        if real is not None and rng.random() < config.augment.channel_p:
            clip = channel(rng, clip)
        if rng.random() < config.augment.noise_p:
            clip = add_noise(
                rng, clip, rng.uniform(*config.augment.snr_db_range), background, with_music=config.augment.music
            )
        yield np.clip(clip, -1, 1).astype(np.float32), index[UNKNOWN]


def _real_parts(real: RealTraining | None) -> tuple[Background | None, RoomBank | None]:
    return (real.context, real.rooms) if real is not None else (None, None)


def real_training(config: TrainConfig, keywords: Sequence[str]) -> RealTraining:
    """The real-speech set's training speakers (not its calibration speakers): their speech with no keyword in
    it as context and negatives, and their keyword cuts as positives."""
    from wakeword.training.real_speech import RealSpeech, load_keywords, training_files

    rs = RealSpeech(config.real_cache)
    cuts = load_keywords()
    with_keyword = {c.file_id for c in cuts}
    files = training_files(rs)
    parts = []
    for f in files:
        words = set(re.findall(r"[a-z]+", (f.transcript or f.text).lower())) if f.language == "en" else set()
        if f.id in with_keyword or words & SPEECH_COMMANDS_SET:
            continue
        x = rs.audio(f)
        if len(x) and rms(x) > 1e-4:
            parts.append(x / rms(x) * 0.1)
    train_ids = {f.id for f in files}
    positives = []
    for c in cuts:
        if c.file_id in train_ids and c.word in keywords:
            x = rs.audio(c.file_id)
            positives.append(
                (c.word, x[int(max(0.0, c.start_s - 0.05) * SAMPLE_RATE) : int((c.end_s + 0.05) * SAMPLE_RATE)])
            )
    rooms = RoomBank(config.seed) if config.augment.room_p else None
    return RealTraining(Background(np.concatenate(parts).astype(np.float32)), positives, rooms)


def build_clips(
    config: TrainConfig,
    items: Sequence[Item],
    split: str,
    *args: Any,
    progress: Callable[[str], None] | None = None,
    **kwargs: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """All clips and label indices of one split: :func:`iter_clips` with the same arguments, stacked;
    ``progress`` hears every 10,000th clip."""
    pairs = []
    for pair in iter_clips(config, items, split, *args, **kwargs):
        pairs.append(pair)
        if progress and len(pairs) % 10_000 == 0:
            progress(f"{split} clips built: {len(pairs)}")
    if not pairs:
        return np.zeros((0, config.window_samples), np.float32), np.zeros(0, np.int64)
    return np.stack([c for c, _ in pairs]).astype(np.float32), np.array([y for _, y in pairs], dtype=np.int64)


def encode_chunks(
    encode: Callable[[np.ndarray], np.ndarray],
    clips: np.ndarray,
    progress: Callable[[str], None] | None = None,
    step: int = 2048,
) -> np.ndarray:
    """``encode`` (the embedding front end, or its frozen part) over ``clips`` a chunk at a time, written into
    one array allocated after the first chunk (a list of chunks plus their concatenation needs twice the memory,
    which at an early cut is more than this machine has)."""
    out = None
    for i in range(0, len(clips), step):
        part = encode(clips[i : i + step])
        if out is None:
            out = np.empty((len(clips), *part.shape[1:]), part.dtype)
        out[i : i + len(part)] = part
        if progress:
            progress(f"front end {min(i + step, len(clips))}/{len(clips)}")
    if out is None:
        raise ValueError("no clips to encode")
    return out


def embed(
    frontend: EmbeddingFrontEnd,
    clips: np.ndarray,
    progress: Callable[[str], None] | None = None,
    mel_augment: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    if not len(clips):
        return np.zeros((0, embedding_count(clips.shape[1]), 96), np.float32)
    return encode_chunks(functools.partial(frontend.batch, mel_augment=mel_augment), clips, progress)


# settings that change the model but not its training clips: changing them reuses cached features
# (the cut and the step are in a cached file's name)
_NOT_DATA = frozenset(
    {
        "out",
        "wake_words",
        "cache_dir",
        "epochs",
        "width",
        "hop_ms",
        "threads",
        "force",
        "embedding_step",
        "tune_blocks",
        "ema_decay",
        "mixup",
        "real_cache",
        "target_fa_per_hour",
    }
)


def _cached_features(
    config: TrainConfig,
    name: str,
    make: Callable[[], tuple[np.ndarray, np.ndarray]],
    encode: Callable[[np.ndarray], np.ndarray],
    key_extra: str,
    progress,
) -> tuple[np.ndarray, np.ndarray]:
    data_fields = {k: v for k, v in asdict(config).items() if k not in _NOT_DATA}
    key = hashlib.sha256((json.dumps(data_fields, default=str, sort_keys=True) + key_extra).encode()).hexdigest()[:16]
    path = config.cache_dir / "features" / f"{name}-{key}.npz"
    if path.exists():
        data = np.load(path)
        return data["x"], data["y"]
    clips, y = make()
    x = encode(clips)
    del clips
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, x=x, y=y)
    tmp.replace(path)
    return x, y


def _torch():
    try:
        import torch
    except ImportError as e:
        raise DependencyError("training needs torch: pip install 'wakeword[train]'") from e
    return torch


def make_head(n_frames: int, n_labels: int, width: int, layers: int = 3):
    """A temporal CNN over the embedding sequence, mean- and max-pooled (it beat a flat MLP over the
    same 9 x 96 values in an exploratory run; see the model card)."""
    _torch()  # the DependencyError with the install hint when torch is missing
    import torch
    from torch import nn

    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm = nn.LayerNorm(96)
            blocks: list = []
            channels = 96
            for _ in range(layers):
                blocks += [nn.Conv1d(channels, width, 3, padding=1), nn.BatchNorm1d(width), nn.GELU(), nn.Dropout(0.2)]
                channels = width
            self.conv = nn.Sequential(*blocks)
            self.out = nn.Linear(2 * width, n_labels)

        def forward(self, x):
            h = self.conv(self.norm(x).transpose(1, 2))
            return self.out(torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1))

    return Head()


def train_head(
    config: TrainConfig,
    x: np.ndarray,
    y: np.ndarray,
    xv: np.ndarray,
    yv: np.ndarray,
    n_labels: int,
    progress: Callable[[str], None],
):
    torch = _torch()
    torch.manual_seed(config.seed)
    model = make_head(x.shape[1], n_labels, config.width)
    groups = [{"params": list(model.parameters()), "lr": 2e-3, "weight_decay": 5e-2}]
    return model, fit(model, groups, x, y, xv, yv, n_labels, progress=progress, **_fit_options(config))


def _fit_options(config: TrainConfig) -> dict[str, Any]:
    """:func:`fit`'s schedule and regularisers as ``config`` sets them."""
    return {
        "epochs": config.epochs,
        "seed": config.seed,
        "threads": config.threads,
        "ema_decay": config.ema_decay,
        "mixup": config.mixup,
    }


# long: the training loop's knobs are its arguments, so tests drive it on toy data without a TrainConfig
def fit(
    model,
    groups: list[dict],
    x: np.ndarray,
    y: np.ndarray,
    xv: np.ndarray,
    yv: np.ndarray,
    n_labels: int,
    epochs: int,
    seed: int,
    threads: int,
    progress: Callable[[str], None],
    ema_decay: float = 0.0,
    mixup: float = 0.0,
) -> float:
    """Train ``model`` in place: AdamW over the parameter ``groups`` (each with its "lr" and "weight_decay"),
    one-cycle schedule, class-balanced cross-entropy with label smoothing, batches of 256 drawn from ``x``
    (float32 or float16); keeps the epoch with the best accuracy on ``xv`` and returns that accuracy.

    ``ema_decay`` > 0 keeps an exponential moving average of the weights and batch-norm statistics
    (``torch.optim.swa_utils``); the average, not the last step, is validated and kept.
    ``mixup`` > 0 trains on convex mixes of two clips, weighted by Beta(mixup, mixup), against the same mix
    of their targets."""
    torch = _torch()
    from torch.optim.swa_utils import AveragedModel

    torch.set_num_threads(threads)
    opt = torch.optim.AdamW(groups)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[g["lr"] for g in groups], total_steps=epochs * ((len(x) + 255) // 256)
    )
    loss_fn = _balanced_loss(y, n_labels)
    yt = torch.from_numpy(y)
    gen = torch.Generator().manual_seed(seed)
    mix_rng = np.random.default_rng([seed, 11])
    averaged = (
        AveragedModel(model, avg_fn=functools.partial(ema_step, decay=ema_decay), use_buffers=True)
        if ema_decay
        else None
    )
    kept = averaged.module if averaged is not None else model
    best, best_state = -1.0, None
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=gen).numpy()
        total, batches = 0.0, 0
        for i in range(0, len(perm), 256):
            idx = np.sort(perm[i : i + 256])  # sorted: faster gathers from a large cache
            xb = torch.from_numpy(x[idx].astype(np.float32))
            loss = _batch_loss(model, loss_fn, xb, yt[idx], mixup, mix_rng)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if averaged is not None:
                averaged.update_parameters(model)
            total, batches = total + loss.item(), batches + 1
        acc = float((predict(kept, xv) == yv).mean()) if len(yv) else 0.0
        if acc >= best:
            best, best_state = acc, {k: v.clone() for k, v in kept.state_dict().items()}
        mean_loss = total / max(1, batches)
        progress(f"epoch {epoch + 1}/{epochs}: mean training loss {mean_loss:.3f}, val accuracy {acc:.4f}")
    model.load_state_dict(best_state)
    model.eval()
    return best


def _balanced_loss(y: np.ndarray, n_labels: int):
    """Cross-entropy with label smoothing, each class weighted by the inverse of its share of ``y``."""
    torch = _torch()
    counts = np.bincount(y, minlength=n_labels).astype(np.float64)
    weights = torch.tensor(counts.sum() / np.maximum(counts, 1) / n_labels, dtype=torch.float32)
    return torch.nn.CrossEntropyLoss(weight=weights, label_smoothing=0.1)


def _batch_loss(model, loss_fn, xb, yb, mixup: float, mix_rng: np.random.Generator):
    """The loss of one batch; with ``mixup`` > 0, of its Beta(mixup, mixup) mix with a shuffled copy of itself,
    against the same mix of the two targets."""
    if not mixup:
        return loss_fn(model(xb), yb)
    torch = _torch()
    lam = float(mix_rng.beta(mixup, mixup))
    other = torch.from_numpy(mix_rng.permutation(len(yb)))
    out = model(lam * xb + (1 - lam) * xb[other])
    return lam * loss_fn(out, yb) + (1 - lam) * loss_fn(out, yb[other])


def ema_decay_at(decay: float, n_averaged: int) -> float:
    """The moving average's decay after ``n_averaged`` steps: ``decay``, warmed up as (1 + n) / (10 + n) so a
    short run (a custom phrase has a few hundred steps) is not an average of its random initial weights."""
    return min(decay, (1 + n_averaged) / (10 + n_averaged))


def ema_step(averaged, current, num_averaged, decay: float):
    d = ema_decay_at(decay, int(num_averaged))
    return averaged * d + current * (1 - d)


def predict(model, x: np.ndarray) -> np.ndarray:
    """Predicted label indices of ``model`` (torch) for ``x``, 1,024 rows at a time."""
    torch = _torch()
    model.eval()
    with torch.no_grad():
        out = [
            model(torch.from_numpy(x[i : i + 1024].astype(np.float32))).argmax(1).numpy()
            for i in range(0, len(x), 1024)
        ]
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def export_head(model, n_frames: int, path: Path) -> None:
    torch = _torch()
    dummy = torch.zeros(1, n_frames, 96)
    torch.onnx.export(
        model,
        (dummy,),
        str(path),
        input_names=["embeddings"],
        output_names=["logits"],
        dynamic_axes={"embeddings": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )


def quantize_head(src: Path, dst: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)


def onnx_accuracy(path: Path, x: np.ndarray, y: np.ndarray) -> float:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits = np.concatenate([sess.run(None, {"embeddings": x[i : i + 1024]})[0] for i in range(0, len(x), 1024)])
    return float((logits.argmax(1) == y).mean())


def calibrate_thresholds(
    config: TrainConfig, model_dir: Path, items: Sequence[Item], progress: Callable[[str], None]
) -> tuple[dict[str, float], dict]:
    """Each wake word's threshold from real speech never trained on (:mod:`.calibrate`)."""
    from wakeword.training.calibrate import calibrate

    thresholds, report = {}, {}
    for word in config.wake_words or config.keywords:
        clips = [synthesise_item(config.cache_dir, i) for i in items if i.split == "val" and i.label == word]
        result = calibrate(model_dir, word, clips, config.real_cache, config.target_fa_per_hour, config.seed)
        thresholds[word], report[word] = result.threshold, result.summary()
        note = "" if result.met_target else f" (no threshold reaches {config.target_fa_per_hour}/h: the highest)"
        progress(
            f"threshold of {word!r}: {result.threshold}{note}, {result.false_accepts_per_hour[result.threshold]:.2f} "
            f"false accepts/h over {result.hours:.2f} h of calibration speech, recall "
            f"{result.recall[result.threshold]:.3f} of {result.positives} validation clips in real talkers"
        )
    return thresholds, report


EMBEDDING_FILE = FRONT_END_FILES["embedding"]
MEL_FILE = FRONT_END_FILES["melspectrogram"]
RAW_MEL_FILE = FRONT_END_FILES["melspectrogram_raw"]


@dataclass(frozen=True)
class _Run:
    """What the steps of one training run share: the options, the planned clips, the recordings mixed into
    them and where progress lines go."""

    config: TrainConfig
    items: list[Item]
    labels: tuple[str, ...]
    background: Background | None
    real: RealTraining | None
    digest: str  # in the cached features' keys: every planned clip, and the real speech
    progress: Callable[[str], None]


@dataclass(frozen=True)
class _Encoder:
    """How clips become what is trained: embeddings for the head, or with ``tune_blocks`` the frozen front's
    activations at the cut for the tuned tail and the head."""

    kind: str  # in the cached features' names: "emb", or "mid{blocks}-s{step}"
    encode: Callable[[np.ndarray, Callable[[np.ndarray], np.ndarray] | None], np.ndarray]  # (clips, mel_augment)
    front_path: Path | None = None  # tune_blocks: the frozen front and the tail to train, as ONNX files
    tail_path: Path | None = None


@dataclass(frozen=True)
class _Trained:
    head: Any  # the torch head to export
    n_frames: int  # embeddings in the window it reads
    val_accuracy: float
    clips_train: int
    clips_val: int


def run(config: TrainConfig, progress: Callable[[str], None] = lambda m: log.info("%s", m)) -> dict:
    """The whole pipeline; returns the metrics written to ``metrics.json``."""
    t0 = time.time()
    out = Path(config.out)
    if out.exists() and any(out.iterdir()) and not config.force:
        raise ConfigError(f"{out}: exists and is not empty; pass --force to overwrite it")
    labels = tuple(config.keywords) + (SILENCE, UNKNOWN)
    items = _synthesised_plan(config, progress)
    fe_dir = front_end_dir()
    frontend = _front_end(fe_dir, config.threads)
    data = _recordings(config, items, labels, progress)
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)

    trained = _train(data, _encoder(config, frontend, fe_dir, tmp, progress), fe_dir, tmp)
    _write_model_files(config, trained, fe_dir, tmp)
    metrics: dict = {"val_accuracy": trained.val_accuracy, **_test_accuracy(data, tmp)}
    manifest = _manifest(data, trained, metrics, tmp)
    _write_json(tmp / "manifest.json", manifest)
    if config.real_speech:
        _calibrate(data, manifest, metrics, tmp)
    metrics["seconds"] = round(time.time() - t0, 1)
    metrics["default_head"] = manifest["default_head"]
    _write_json(tmp / "metrics.json", metrics)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    progress(f"model written to {out} in {metrics['seconds']} s")
    return metrics


def _write_json(path: Path, value: dict) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n")


def _synthesised_plan(config: TrainConfig, progress: Callable[[str], None]) -> list[Item]:
    """The planned clips, each synthesised (or found in the cache); progress at most every 5 s."""
    items = plan(
        config.keywords,
        config.seed,
        config.per_keyword,
        config.per_unknown_word,
        config.test_per_keyword,
        config.unknown_words,
        with_festival=config.festival,
        with_flite=config.flite,
        with_nonfree=config.nonfree_voices,
    )
    progress(f"plan: {len(items)} clips to synthesise or reuse")
    last = [0.0]

    def synth_progress(n: int, total: int) -> None:
        if time.time() - last[0] > 5 or n == total:
            last[0] = time.time()
            progress(f"synthesised {n}/{total}")

    return synthesise_all(items, config.cache_dir, progress=synth_progress)


def _front_end(directory: Path, threads: int) -> EmbeddingFrontEnd:
    """The speech-embedding front end whose two ONNX files are in ``directory``."""
    return EmbeddingFrontEnd(directory / MEL_FILE, directory / EMBEDDING_FILE, threads=threads, cache_size=0)


def _recordings(
    config: TrainConfig, items: list[Item], labels: tuple[str, ...], progress: Callable[[str], None]
) -> _Run:
    """The run's data: the planned clips with the background recordings and the real speech they are mixed with."""
    # cached features depend on every planned clip, not only on the options: a voice added to a pool
    # changes clips without changing the options or the count
    digest = plan_digest(items)
    background = _background(config.background_dirs) if config.background_dirs else None
    real = real_training(config, config.keywords) if config.real_speech else None
    if real is not None:
        progress(
            f"real speech: {len(real.context.audio) / SAMPLE_RATE / 60:.1f} min of context and negatives, "
            f"{len(real.cuts)} keyword cuts as positives"
        )
        digest = plan_digest(items) + f"-real{len(real.cuts)}-{len(real.context.audio)}"
    return _Run(config, items, labels, background, real, digest, progress)


def _encoder(
    config: TrainConfig, frontend: EmbeddingFrontEnd, fe_dir: Path, tmp: Path, progress: Callable[[str], None]
) -> _Encoder:
    if not config.tune_blocks:
        return _Encoder("emb", lambda clips, mel_augment: embed(frontend, clips, progress, mel_augment))
    from wakeword.training.finetune import FrozenFront, split_model

    front_path, tail_path = split_model(fe_dir / EMBEDDING_FILE, config.tune_blocks, tmp / "split")
    front = FrozenFront(frontend, front_path, config.embedding_step, config.threads)

    def encode(clips: np.ndarray, mel_augment: Callable[[np.ndarray], np.ndarray] | None) -> np.ndarray:
        return encode_chunks(functools.partial(front, mel_augment=mel_augment), clips, progress)

    return _Encoder(f"mid{config.tune_blocks}-s{config.embedding_step}", encode, front_path, tail_path)


def _features(data: _Run, encoder: _Encoder, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The encoded clips and label indices of the train or the val split, from the feature cache if it has them;
    only training clips have their log-mel input augmented."""
    config = data.config
    if split == "train":
        copies, silence, offset, speech = config.copies, config.silence_clips, 0, config.speech_negatives
    else:
        copies, silence, offset, speech = 1, config.silence_clips // 10, 1, config.speech_negatives // 10
    mel_augment = None
    if split == "train" and (config.augment.mel_warp_p or config.augment.mel_mask_p):
        rng = np.random.default_rng([config.seed, 3])
        mel_augment = functools.partial(augment_mel, rng, config=config.augment)
    return _cached_features(
        config,
        split if encoder.kind == "emb" else f"{split}-{encoder.kind}",
        lambda: build_clips(
            config,
            data.items,
            split,
            data.background,
            data.labels,
            copies,
            silence=silence,
            seed_offset=offset,
            speech=speech,
            real=data.real,
            progress=data.progress,
        ),
        lambda clips: encoder.encode(clips, mel_augment),
        f"{split}:{data.digest}",
        data.progress,
    )


def _train(data: _Run, encoder: _Encoder, fe_dir: Path, tmp: Path) -> _Trained:
    """The head on the train split, kept at its best val accuracy; with ``tune_blocks`` the embedding model's
    tail trains with it. The embedding model it runs after (tuned or not) is written into ``tmp``."""
    config, progress = data.config, data.progress
    x, y = _features(data, encoder, "train")
    xv, yv = _features(data, encoder, "val")
    if not config.tune_blocks:
        x, xv = every_step(x, config.embedding_step), every_step(xv, config.embedding_step)
        progress(f"features: train {x.shape}, val {xv.shape}")
        head, val_acc = train_head(config, x, y, xv, yv, len(data.labels), progress)
        shutil.copy2(fe_dir / EMBEDDING_FILE, tmp / EMBEDDING_FILE)
        return _Trained(head, x.shape[1], val_acc, len(x), len(xv))
    from wakeword.training.finetune import load_tail, param_groups, tuned_model, write_tuned_embedding

    assert encoder.front_path is not None and encoder.tail_path is not None
    progress(f"activations at the cut: train {x.shape}, val {xv.shape}")
    torch = _torch()
    torch.manual_seed(config.seed)
    net = tuned_model(load_tail(encoder.tail_path), make_head(x.shape[1], len(data.labels), config.width))
    val_acc = fit(net, param_groups(net), x, y, xv, yv, len(data.labels), progress=progress, **_fit_options(config))
    diff = write_tuned_embedding(fe_dir / EMBEDDING_FILE, net.tail, tmp / EMBEDDING_FILE, encoder.front_path)
    progress(f"tuned embedding model written (ONNX vs torch: {diff:.1e})")
    shutil.rmtree(tmp / "split")
    return _Trained(net.head, x.shape[1], val_acc, len(x), len(xv))


def _write_model_files(config: TrainConfig, trained: _Trained, fe_dir: Path, tmp: Path) -> None:
    """The head in fp32 and int8, the mel front end and the speech-embedding model's licence (and notice)."""
    export_head(trained.head, trained.n_frames, tmp / "head.onnx")
    quantize_head(tmp / "head.onnx", tmp / "head.int8.onnx")
    shutil.copy2(fe_dir / MEL_FILE, tmp / MEL_FILE)
    shutil.copy2(fe_dir / RAW_MEL_FILE, tmp / RAW_MEL_FILE)
    shutil.copy2(fe_dir / "LICENSE", tmp / "LICENSE.speech-embedding")
    if config.tune_blocks:
        (tmp / "NOTICE.speech-embedding").write_text(
            f"embedding_model.onnx is Google's speech-embedding model (Apache-2.0, LICENSE.speech-embedding) with\n"
            f"the weights of its last {config.tune_blocks} convolution block(s) changed by `wakeword train`\n"
            f"(fine-tuned with the keyword head). The graph is unchanged.\n"
        )


def _test_accuracy(data: _Run, tmp: Path) -> dict[str, float]:
    """Accuracy of both heads on the held-out test voices, clean and in pink noise at 10 and 0 dB, through the
    written model's own front end (a tuned embedding model differs from the shipped one)."""
    config = data.config
    model_frontend = _front_end(tmp, config.threads)
    metrics = {}
    test_sets = {"clean": (None, None), "snr10": (10.0, "pink"), "snr0": (0.0, "pink")}
    for name, (snr, noise) in test_sets.items():
        clips, yt = build_clips(
            config,
            data.items,
            "test",
            data.background,
            data.labels,
            1,
            snr_db=snr,
            noise_kind=noise,
            silence=100,
            seed_offset=2,
            speech=0,
        )
        xt = every_step(embed(model_frontend, clips), config.embedding_step)
        for head in ("head.onnx", "head.int8.onnx"):
            metrics[f"{head}:{name}"] = onnx_accuracy(tmp / head, xt, yt)
    return metrics


def _manifest(data: _Run, trained: _Trained, metrics: dict, tmp: Path) -> dict[str, Any]:
    """``manifest.json`` of the model in ``tmp``; the int8 head is the default unless it loses over 0.5 points."""
    config = data.config
    int8_ok = metrics["head.int8.onnx:clean"] >= metrics["head.onnx:clean"] - 0.005
    files = {
        "melspectrogram": MEL_FILE,
        "melspectrogram_raw": RAW_MEL_FILE,
        "embedding": EMBEDDING_FILE,
        "head": "head.onnx",
        "head_int8": "head.int8.onnx",
    }
    return {
        "format": "wakeword-model/1",
        "architecture": ARCHITECTURE,
        "labels": list(data.labels),
        "keywords": list(config.wake_words or config.keywords),
        "sampling_rate": SAMPLE_RATE,
        "window_samples": config.window_samples,
        "hop_ms": config.hop_ms,
        "embedding_step_frames": config.embedding_step,
        "embedding_tuned_blocks": config.tune_blocks,
        "default_head": "head_int8" if int8_ok else "head",
        "files": {k: {"path": v, "sha256": sha256_file(tmp / v)} for k, v in files.items()},
        "training": _recipe(data, trained),
    }


def _recipe(data: _Run, trained: _Trained) -> dict[str, Any]:
    """The manifest's ``training``: the options that shaped the data and the model, and the voices used."""
    config, items = data.config, data.items
    return {
        "seed": config.seed,
        "per_keyword": config.per_keyword,
        "per_unknown_word": config.per_unknown_word,
        "test_per_keyword": config.test_per_keyword,
        "unknown_words": list(config.unknown_words),
        "festival": config.festival,
        "flite": config.flite,
        "tune_blocks": config.tune_blocks,
        "pitch_p": config.augment.pitch_p,
        "mel_warp_p": config.augment.mel_warp_p,
        "mel_mask_p": config.augment.mel_mask_p,
        "copies": config.copies,
        "silence_clips": config.silence_clips,
        "speech_negatives": config.speech_negatives,
        "embedding_step": config.embedding_step,
        "epochs": config.epochs,
        "width": config.width,
        "clips_train": trained.clips_train,
        "clips_val": trained.clips_val,
        "nonfree_voices": config.nonfree_voices,
        "ema_decay": config.ema_decay,
        "mixup": config.mixup,
        # engine:voice (espeak: engine:accent) of the clips actually planned
        "voices_train": sorted({f"{i.voice.engine}:{i.voice.name}" for i in items if i.split != "test"}),
        "voices_test": sorted({f"{i.voice.engine}:{i.voice.name}" for i in items if i.split == "test"}),
    }


def _calibrate(data: _Run, manifest: dict[str, Any], metrics: dict, tmp: Path) -> None:
    """Each wake word's threshold on real speech into the manifest (rewritten), the calibration into ``metrics``."""
    config, real = data.config, data.real
    manifest["thresholds"], metrics["calibration"] = calibrate_thresholds(config, tmp, data.items, data.progress)
    manifest["training"]["real_speech"] = {
        "cuts": len(real.cuts) if real else 0,
        "context_minutes": round(len(real.context.audio) / SAMPLE_RATE / 60, 1) if real else 0,
        "real_copies": config.real_copies,
        "context_p": config.augment.context_p,
        "room_p": config.augment.room_p,
        "channel_p": config.augment.channel_p,
        "target_fa_per_hour": config.target_fa_per_hour,
    }
    _write_json(tmp / "manifest.json", manifest)
