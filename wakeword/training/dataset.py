"""Plan, synthesise (cached, resumable) and augment keyword training data.

A plan is a deterministic list of (text, voice, split) items for a seed.
Voices are split so the test set holds voices never heard in training:
espeak-ng's Caribbean-English voice, a fifth of espeak's variants, and
festival's HTS voice "slt" (statistical parametric synthesis, unlike every
training voice); festival's two diphone voices and flite's awb, rms and kal16 are used in
training (never flite's slt: the held-out speaker), and so, when installed from
Debian's non-free component, are SVOX pico's two female voices and RHVoice's
alan, bdl and clb (never its slt). Real recorded speech is
only used for background babble and evaluation, never as a positive.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wakeword.pcm import SAMPLE_RATE
from wakeword.training.voices import (
    ESPEAK_ENGLISH,
    Voice,
    espeak_variants,
    festival_voices,
    flite_voices,
    pico_voices,
    rhvoice_voices,
    synthesise,
)

log = logging.getLogger(__name__)


SPEECH_COMMANDS = (
    "backward",
    "bed",
    "bird",
    "cat",
    "dog",
    "down",
    "eight",
    "five",
    "follow",
    "forward",
    "four",
    "go",
    "happy",
    "house",
    "learn",
    "left",
    "marvin",
    "nine",
    "no",
    "off",
    "on",
    "one",
    "right",
    "seven",
    "sheila",
    "six",
    "stop",
    "three",
    "tree",
    "two",
    "up",
    "visual",
    "wow",
    "yes",
    "zero",
)
SILENCE = "_silence_"
UNKNOWN = "_unknown_"

# Words that are not keywords, some chosen to sound close to one (marvel, shelter, seventy...).
UNKNOWN_WORDS = (
    "marvel",
    "marble",
    "martin",
    "carving",
    "garden",
    "morning",
    "shelter",
    "sheet",
    "shield",
    "seventy",
    "seventeen",
    "sixty",
    "forty",
    "fourteen",
    "eighteen",
    "ninety",
    "nineteen",
    "thirteen",
    "twenty",
    "thirty",
    "lift",
    "lefty",
    "light",
    "bright",
    "stock",
    "stuff",
    "goal",
    "gold",
    "note",
    "under",
    "dawn",
    "town",
    "crown",
    "mouse",
    "horse",
    "dig",
    "duck",
    "bad",
    "bet",
    "bread",
    "bear",
    "third",
    "word",
    "world",
    "cut",
    "cap",
    "cart",
    "hat",
    "happen",
    "hoppy",
    "lean",
    "yearn",
    "visible",
    "vision",
    "vista",
    "wood",
    "wool",
    "yellow",
    "yesterday",
    "zebra",
    "zoo",
    "free",
    "treat",
    "trip",
    "tool",
    "tune",
    "hollow",
    "reward",
    "award",
    "okay",
    "hello",
    "thanks",
    "please",
    "computer",
    "music",
    "weather",
    "timer",
    "alarm",
    "water",
    "coffee",
    "table",
    "window",
    "phone",
    "radio",
    "monday",
    "number",
    "people",
    "little",
    "because",
    "before",
    "after",
    "another",
    "different",
    "system",
    "again",
    "never",
    "always",
    "maybe",
    "something",
    "nothing",
    "quiet",
    "loud",
    "open",
    "close",
    "start",
    "begin",
    "finish",
    "play",
    "pause",
    "next",
    "previous",
    "volume",
    "call",
    "message",
    "kitchen",
    "bedroom",
)
# Left out on purpose: homophones of keywords ("too", "know", "write", "foreword") and words that
# begin with a whole keyword ("stopped", "going", "onto", "learned"): they are label noise for a
# window classifier.


@dataclass(frozen=True)
class Item:
    label: str
    text: str
    voice: Voice
    split: str  # "train" | "val" | "test"


def plan_digest(items: Sequence[Item]) -> str:
    """A short hash of the planned clips (split, label, text and voice of each, in order)."""
    text = "\n".join(f"{i.split}|{i.label}|{i.text}|{i.voice.key}" for i in items)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _stable_fraction(text: str) -> float:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


FESTIVAL_TEST_VOICE = "cmu_us_slt_arctic_hts"


def voice_pools(
    seed: int, with_festival: bool = True, with_flite: bool = True, with_nonfree: bool = True
) -> dict[str, list[Voice]]:
    """Train and test voice pools; test voices never appear in training."""
    rng = random.Random(seed)
    variants = espeak_variants()
    held_variants = {v for v in variants if _stable_fraction("variant:" + v) < 0.2}
    train_accents = [a for a in ESPEAK_ENGLISH if a != "en-029"]
    train: list[Voice] = []
    test: list[Voice] = []
    for _ in range(4000):
        accent = rng.choice(train_accents)
        variant = rng.choice([""] + [v for v in variants if v not in held_variants])
        train.append(Voice("espeak", accent, variant, speed=rng.uniform(0.7, 1.3), pitch=rng.randint(20, 80)))
    for _ in range(2000):
        variant = rng.choice([""] + sorted(held_variants))
        accent = "en-029" if rng.random() < 0.4 else rng.choice(train_accents)
        # a held-out variant on any accent, or any variant on the held-out accent
        if accent != "en-029" and not variant:
            variant = rng.choice(sorted(held_variants))
        test.append(Voice("espeak", accent, variant, speed=rng.uniform(0.75, 1.25), pitch=rng.randint(25, 75)))
    piper = [
        Voice("piper", "joe", speed=rng.uniform(0.75, 1.3), noise=rng.uniform(0.3, 1.0), noise_w=rng.uniform(0.3, 1.2))
        for _ in range(2000)
    ]
    names = festival_voices() if with_festival else []
    festival_train = [
        Voice("festival", n, speed=s) for n in names if n != FESTIVAL_TEST_VOICE for s in (0.8, 0.9, 1.0, 1.1, 1.25)
    ]
    festival_test = [
        Voice("festival", n, speed=s) for n in names if n == FESTIVAL_TEST_VOICE for s in (0.85, 1.0, 1.15)
    ]
    # flite's CMU ARCTIC voices: awb (Scottish male), rms (US male), kal16; never slt, the held-out speaker
    flite_train = [
        Voice("flite", n, speed=s) for n in (flite_voices() if with_flite else ()) for s in (0.8, 0.9, 1.0, 1.1, 1.25)
    ]

    # pico and RHVoice: the only female voices that are not espeak variants; pitch in percent of the voice's own
    def nonfree(engine: str, names: Iterable[str]) -> list[Voice]:
        return [
            Voice(engine, n, speed=s, pitch=p)
            for n in names
            for s in (0.8, 0.9, 1.0, 1.1, 1.25)
            for p in (85, 100, 115, 130)
        ]

    return {
        "train_espeak": train,
        "test_espeak": test,
        "piper": piper,
        "festival_train": festival_train,
        "festival": festival_test,
        "flite_train": flite_train,
        "pico_train": nonfree("pico", pico_voices() if with_nonfree else ()),
        "rhvoice_train": nonfree("rhvoice", rhvoice_voices() if with_nonfree else ()),
    }


# long: the plan's sizes and voice pools are keywords with defaults; tests and scripts name only those they change
def plan(
    keywords: Sequence[str],
    seed: int = 0,
    per_keyword: int = 200,
    per_unknown_word: int = 12,
    test_per_keyword: int = 30,
    unknown_words: Sequence[str] = UNKNOWN_WORDS,
    piper_share: float = 0.3,
    val_share: float = 0.1,
    with_festival: bool = True,
    with_flite: bool = True,
    with_nonfree: bool = True,
) -> list[Item]:
    """The deterministic list of clips to synthesise for ``keywords`` (+ unknown words)."""
    rng = random.Random(seed)
    festival_rng = random.Random(seed + 1)  # its own stream: adding festival voices keeps the other draws
    flite_rng = random.Random(seed + 2)
    nonfree_rng = random.Random(seed + 3)
    pools = voice_pools(seed, with_festival, with_flite, with_nonfree)
    unknown_words = [w for w in unknown_words if w not in keywords]
    items: list[Item] = []

    def draw(r: random.Random, pool: list[Voice], n: int, label: str, text: str) -> None:
        """``n`` distinct voices of a small pool (all of them if fewer), each to train or val."""
        for voice in r.sample(pool, min(n, len(pool))):
            items.append(Item(label, text, voice, "val" if r.random() < val_share else "train"))

    def add(label: str, text: str, n_train: int, n_test: int, festival_train: int, nonfree_train: int) -> None:
        draw(festival_rng, pools["festival_train"], festival_train, label, text)
        draw(flite_rng, pools["flite_train"], festival_train, label, text)
        draw(nonfree_rng, pools["pico_train"], nonfree_train, label, text)
        draw(nonfree_rng, pools["rhvoice_train"], nonfree_train, label, text)
        for _ in range(n_train):
            pool = pools["piper"] if rng.random() < piper_share else pools["train_espeak"]
            split = "val" if rng.random() < val_share else "train"
            items.append(Item(label, text, rng.choice(pool), split))
        for _ in range(n_test):
            items.append(Item(label, text, rng.choice(pools["test_espeak"]), "test"))

    for word in keywords:
        add(word, word, per_keyword, test_per_keyword, festival_train=10, nonfree_train=20)
        for voice in pools["festival"]:
            items.append(Item(word, word, voice, "test"))
    for word in unknown_words:
        add(UNKNOWN, word, per_unknown_word, max(1, per_unknown_word // 4), festival_train=2, nonfree_train=2)
    # de-duplicate identical (text, voice) pairs, keeping the first split
    seen: set[tuple[str, str]] = set()
    unique = []
    for item in items:
        k = (item.text, item.voice.key)
        if k not in seen:
            seen.add(k)
            unique.append(item)
    return unique


def trim(audio: np.ndarray, threshold_db: float = -40.0) -> np.ndarray:
    """Cut leading and trailing silence (below ``threshold_db`` of the peak, in 10 ms frames)."""
    frame = SAMPLE_RATE // 100
    n = len(audio) // frame
    if n == 0:
        return audio
    energy = np.sqrt((audio[: n * frame].reshape(n, frame) ** 2).mean(axis=1) + 1e-12)
    loud = np.flatnonzero(20 * np.log10(energy / (energy.max() + 1e-12)) > threshold_db)
    if loud.size == 0:
        return audio
    return audio[max(0, loud[0] - 2) * frame : min(n, loud[-1] + 3) * frame]


def cache_path(cache_dir: Path, item: Item) -> Path:
    safe = "".join(c if c.isalnum() else "_" for c in item.text)
    return cache_dir / "tts" / item.voice.key / f"{safe}.npy"


def synthesise_item(cache_dir: Path, item: Item) -> np.ndarray:
    """The trimmed 16 kHz clip of an item, synthesised once and cached on disk as .npy."""
    path = cache_path(cache_dir, item)
    if path.exists():
        return np.load(path)
    import soxr

    audio, rate = synthesise(item.voice, item.text)
    if rate != SAMPLE_RATE:
        audio = soxr.resample(audio, rate, SAMPLE_RATE)
    audio = trim(audio.astype(np.float32))
    peak = float(np.abs(audio).max()) or 1.0
    audio = (audio / peak * 0.5).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, audio)
    tmp.replace(path)  # atomic: an interrupted run never leaves half a file
    return audio


def _worker(args: tuple[str, Item]) -> tuple[Item, bool]:
    cache_dir, item = args
    try:
        synthesise_item(Path(cache_dir), item)
        return item, True
    except Exception as e:  # one voice failing on one word must not stop the run
        log.warning("synthesis failed for %r with %s: %s", item.text, item.voice.key, e)
        return item, False


def synthesise_all(items: Iterable[Item], cache_dir: Path, workers: int = 2, progress=None) -> list[Item]:
    """Synthesise every item not yet cached (resumable); returns the items that have audio."""
    from concurrent.futures import ProcessPoolExecutor

    items = list(items)
    todo = [i for i in items if not cache_path(cache_dir, i).exists()]
    ok = {id(i) for i in items} if not todo else {id(i) for i in items if cache_path(cache_dir, i).exists()}
    if todo:
        log.info("synthesising %d clips (%d cached)", len(todo), len(items) - len(todo))
        by_key = {(i.text, i.voice.key): i for i in todo}
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for n, (item, good) in enumerate(pool.map(_worker, [(str(cache_dir), i) for i in todo], chunksize=16)):
                if good:
                    ok.add(id(by_key[(item.text, item.voice.key)]))
                if progress is not None:
                    progress(n + 1, len(todo))
    return [i for i in items if id(i) in ok]
