"""The real-speech development set: recordings of real people from Debian packages, split by speaker.

Debian main ships recordings of real people inside games, educational software and telephony prompts
(``data/real-speech/files.csv`` lists each file with its package, version, path, text, speaker, language,
licence, duration, sha256 and split). :func:`fetch` downloads the packages at their pinned versions with
``apt-get download`` and unpacks them with ``dpkg -x`` (no install, no root), into a cache; every file is
checked against its sha256 before use, so the set is the same on every machine.

Speakers, not files, are split: a ``train`` speaker may be used by ``wakeword train``; an ``eval`` speaker
is only ever evaluated. ``data/real-speech/keywords.csv`` lists the Speech Commands words found in the
English files by Whisper word timestamps (each cut re-transcribed alone as a check), isolated or inside a
phrase.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import re
import shutil
import subprocess
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wakeword.errors import DependencyError, WakewordError
from wakeword.manifest import sha256_file
from wakeword.pcm import SAMPLE_RATE

log = logging.getLogger(__name__)

TRAIN, EVAL = "train", "eval"

# package -> pinned version (Debian bookworm main)
PACKAGES = {
    "tuxpaint-stamps-default": "2022.06.04-1",
    "asterisk-prompt-it-menardi-wav": "1:1.4.22+mm20110907-3.1",
    "asterisk-prompt-fr-armelle": "20070613-2.2",
    "gcin-voice": "0~20170223-3",
    "nexuiz-data": "2.5.2-12",
    "asterisk-prompt-es-co": "0.20070403-2.1",
    "megaglest-data": "3.13.0-3",
    "boswars-data": "2.7+svn160110-5",
    "codec2-examples": "1.0.5-1",
    "kajongg": "4:22.12.3-1",
    "unknown-horizons": "2019.1-6",
}
# zip archives shipped inside a package, named by the first part of a "_x/<archive>/" path
ARCHIVES = {("nexuiz-data", "data"): "usr/share/games/nexuiz/data/data.pk3"}


class RealSpeechError(WakewordError):
    """The real-speech set cannot be fetched or does not match its manifest."""


@dataclass(frozen=True)
class RealFile:
    id: str
    package: str
    version: str
    path: str
    text: str
    speaker: str
    speaker_group: str
    language: str
    licence: str
    duration_s: float
    sha256: str
    split: str

    @property
    def transcript(self) -> str | None:
        """The package's own transcript (``None`` when unknown or only guessed from the file name)."""
        if self.text.startswith(("?", "~")):
            return None
        return re.sub(r"\s*\[[^\]]*\]\s*$", "", self.text)


@dataclass(frozen=True)
class KeywordCut:
    """A Speech Commands word said by a real person: its file, word and time span (seconds)."""

    file_id: str
    word: str
    start_s: float
    end_s: float
    kind: str  # "isolated" (the whole utterance is the word) | "phrase"
    transcript: str


def data_dir() -> Path:
    """``data/real-speech`` of the source checkout."""
    return Path(__file__).resolve().parents[2] / "data" / "real-speech"


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "wakeword" / "real-speech"


def file_id(package: str, path: str) -> str:
    return hashlib.sha256(f"{package}/{path}".encode()).hexdigest()[:12]


def load_files(path: Path | None = None) -> list[RealFile]:
    path = path or data_dir() / "files.csv"
    if not path.is_file():
        raise RealSpeechError(
            f"{path}: the real-speech manifest is part of a source checkout of wakeword "
            f"(data/real-speech); train with --no-real-speech without it"
        )
    with open(path, newline="") as f:
        return [_real_file(row) for row in csv.DictReader(f)]


def _real_file(row: dict[str, str]) -> RealFile:
    """One ``files.csv`` row: every column is text but ``duration_s``."""
    fields = dict(row)
    duration_s = float(fields.pop("duration_s"))
    return RealFile(**fields, duration_s=duration_s)


def load_keywords(path: Path | None = None) -> list[KeywordCut]:
    path = path or data_dir() / "keywords.csv"
    with open(path, newline="") as f:
        return [
            KeywordCut(r["file_id"], r["word"], float(r["start_s"]), float(r["end_s"]), r["kind"], r["transcript"])
            for r in csv.DictReader(f)
        ]


def write_csv(path: Path, rows: Sequence[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)


def fetch(cache: Path, packages: Iterable[str] | None = None) -> Path:
    """Download and unpack the packages (pinned versions) under ``cache/x/<package>``; returns ``cache/x``."""
    root = cache / "x"
    for package in packages or PACKAGES:
        done = root / package / ".unpacked"
        if done.exists():
            continue
        version = PACKAGES[package]
        debs = cache / "debs"
        debs.mkdir(parents=True, exist_ok=True)
        for tool in ("apt-get", "dpkg"):
            if shutil.which(tool) is None:
                raise DependencyError(f"{tool} is needed to fetch the real-speech set (a Debian or Ubuntu system)")
        log.info("downloading %s=%s", package, version)
        res = subprocess.run(["apt-get", "download", f"{package}={version}"], cwd=debs, capture_output=True, text=True)
        deb = next(iter(sorted(debs.glob(f"{package}_*.deb"))), None)
        if deb is None:
            raise RealSpeechError(
                f"apt-get download {package}={version} failed "
                f"({(res.stderr.strip().splitlines() or ['no output'])[-1]}); run apt-get update, "
                f"or train with --no-real-speech"
            )
        target = root / package
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        subprocess.run(["dpkg", "-x", str(deb), str(target)], check=True)
        for (pkg, name), archive in ARCHIVES.items():
            if pkg == package:
                with zipfile.ZipFile(target / archive) as z:
                    members = [m for m in z.namelist() if m.startswith("sound/") and m.endswith((".ogg", ".wav"))]
                    z.extractall(target / "_x" / name, members)
        deb.unlink()  # the unpacked tree is the cache; the .deb would double the disk it takes
        done.write_text(version + "\n")
    return root


def local_path(root: Path, f: RealFile) -> Path:
    return root / f.package / f.path


def decode(path: Path) -> np.ndarray:
    """16 kHz mono float32 of a package's recording (Ogg Vorbis, WAV, or raw GSM 06.10 at 8 kHz via sox)."""
    import soxr

    if path.suffix == ".gsm":
        if shutil.which("sox") is None:
            raise DependencyError("sox is needed to decode the GSM prompts: apt-get install sox")
        raw = subprocess.run(
            [
                "sox",
                "-t",
                "gsm",
                "-r",
                "8000",
                "-c",
                "1",
                str(path),
                "-t",
                "raw",
                "-e",
                "floating-point",
                "-b",
                "32",
                "-r",
                str(SAMPLE_RATE),
                "-",
            ],
            capture_output=True,
            check=True,
        ).stdout
        return np.frombuffer(raw, np.float32).copy()
    import soundfile as sf

    x, rate = sf.read(str(path), dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    if rate != SAMPLE_RATE:
        x = soxr.resample(x, rate, SAMPLE_RATE)
    return np.ascontiguousarray(x, np.float32)


class RealSpeech:
    """The fetched, checked and decoded set; decoded audio is cached as .npy beside the unpacked packages."""

    def __init__(
        self, cache: Path | None = None, files: Sequence[RealFile] | None = None, packages: Iterable[str] | None = None
    ) -> None:
        self.cache = Path(cache or default_cache_dir())
        all_files = list(files) if files is not None else load_files()
        wanted = set(packages) if packages is not None else {f.package for f in all_files}
        self.files = [f for f in all_files if f.package in wanted]
        self.by_id = {f.id: f for f in self.files}
        self.root = fetch(self.cache, sorted(wanted))
        self._checked: set[str] = set()

    def audio(self, f: RealFile | str) -> np.ndarray:
        f = self.by_id[f] if isinstance(f, str) else f
        npy = self.cache / "audio" / f"{f.id}.npy"
        if npy.exists():
            return np.load(npy)
        src = local_path(self.root, f)
        if not src.is_file():
            raise RealSpeechError(f"{f.package}: {f.path} is missing from the unpacked package")
        if sha256_file(src) != f.sha256:
            raise RealSpeechError(f"{f.package}: {f.path} does not match its sha256 in files.csv")
        x = decode(src)
        npy.parent.mkdir(parents=True, exist_ok=True)
        tmp = npy.with_suffix(".tmp.npy")
        np.save(tmp, x)
        tmp.replace(npy)
        return x

    def select(
        self, split: str | None = None, language: str | None = None, exclude_words: Sequence[str] = ()
    ) -> list[RealFile]:
        """Files of a split (and language); ``exclude_words`` drops files whose known or aligned text
        contains one of them."""
        out = []
        for f in self.files:
            if split and f.split != split or language and f.language != language:
                continue
            text = (f.transcript or f.text).lower()
            if any(re.search(rf"\b{re.escape(w)}\b", text) for w in exclude_words):
                continue
            out.append(f)
        return out


def speech_stream(
    rs: RealSpeech, files: Sequence[RealFile], rng: np.random.Generator, gap_s: tuple[float, float] = (0.2, 1.0)
) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """The files one after another with random gaps of silence; returns audio and (start sample, id) of each."""
    parts, starts, pos = [], [], 0
    for f in files:
        x = rs.audio(f)
        if not len(x):
            continue
        gap = np.zeros(int(rng.uniform(*gap_s) * SAMPLE_RATE), np.float32)
        starts.append((pos, f.id))
        parts += [x, gap]
        pos += len(x) + len(gap)
    return (np.concatenate(parts) if parts else np.zeros(0, np.float32)), starts


def insert_clips(
    talk: np.ndarray,
    clips: Sequence[np.ndarray],
    rng: np.random.Generator,
    snr_db: tuple[float, float] = (0.0, 20.0),
    spacing_s: float = 8.0,
) -> tuple[np.ndarray, list[tuple[int, int, float]]]:
    """``clips`` mixed on top of running ``talk`` (real talkers), each ``snr_db`` above the talkers' level
    around it, at least ``spacing_s`` apart; returns the mix and (start, end, snr) of each clip."""
    out = talk.astype(np.float32).copy()
    spans = []
    step = int(spacing_s * SAMPLE_RATE)
    pos = step // 2
    for clip in clips:
        if pos + len(clip) + SAMPLE_RATE > len(out):
            break
        around = talk[max(0, pos - SAMPLE_RATE) : pos + len(clip) + SAMPLE_RATE]
        talk_rms = (
            float(np.sqrt(np.mean(around[np.abs(around) > 1e-4] ** 2))) if np.any(np.abs(around) > 1e-4) else 0.01
        )
        clip_rms = float(np.sqrt(np.mean(clip[np.abs(clip) > 1e-4] ** 2)) + 1e-9)
        snr = float(rng.uniform(*snr_db))
        out[pos : pos + len(clip)] += clip * (talk_rms * 10 ** (snr / 20) / clip_rms)
        spans.append((pos, pos + len(clip), snr))
        pos += step + int(rng.integers(0, step // 2))
    peak = float(np.abs(out).max()) or 1.0
    if peak > 0.99:
        out *= 0.99 / peak
    return out, spans


def language_of(package: str, path: str, text: str) -> str:
    m = re.search(r"\[([a-z]{2,3})[^\]]*\]\s*$", text)
    if m:
        return m.group(1)
    if package == "kajongg" and "/voices/de/" in path:
        return "de"
    return "en"


def speaker_group(package: str, speaker: str) -> str:
    """One key per person: Kajongg's English and German voice folders are the same three people."""
    m = re.search(r"\((Petra|Maria|Wolfgang)", speaker) if package == "kajongg" else None
    return f"kajongg:{m.group(1)}" if m else f"{package}:{speaker}"


# Non-English speakers used for training (about 78 min in 5 languages); all others of those packages are
# held out. English speakers are split by a stable hash of their name (TRAIN_SHARE of them to train).
TRAIN_SPEAKERS_NON_ENGLISH = (
    "tuxpaint-stamps-default:Tux Paint Romanian voice (Tabbytha)",
    "tuxpaint-stamps-default:Tux Paint Bulgarian voice (Krasimir Petkov)",
    "tuxpaint-stamps-default:Tux Paint Catalan voice",
    "tuxpaint-stamps-default:Tux Paint Danish voice (Joe Dalton)",
    "gcin-voice:gcin 3.ogg voice (Edward Der-Hua Liu set)",
)
TRAIN_SHARE = 0.35


def stable_fraction(text: str) -> float:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def split_of(group: str, languages: Iterable[str]) -> str:
    """The split of a speaker (a ``speaker_group``) who speaks ``languages`` in the set."""
    if "en" not in set(languages):
        return TRAIN if group in TRAIN_SPEAKERS_NON_ENGLISH else EVAL
    return TRAIN if stable_fraction("speaker:" + group) < TRAIN_SHARE else EVAL


# Train speakers never trained on: with the Asterisk prompts that training does not use, they choose each
# wake word's threshold, so the eval speakers are never looked at for it. The Catalan voice, and a share of
# the English train speakers by a stable hash.
CALIBRATION_SPEAKERS = ("tuxpaint-stamps-default:Tux Paint Catalan voice",)
CALIBRATION_SHARE = 0.25


def is_calibration(group: str) -> bool:
    if group in TRAIN_SPEAKERS_NON_ENGLISH:
        return group in CALIBRATION_SPEAKERS
    return stable_fraction("calibration:" + group) < CALIBRATION_SHARE


def _speakers_with_cuts(rs: RealSpeech) -> set[str]:
    """Speakers whose keyword cuts training uses: the only real positives it has, so never calibration."""
    path = data_dir() / "keywords.csv"
    cuts = load_keywords(path) if path.exists() else []
    return {rs.by_id[c.file_id].speaker_group for c in cuts if c.file_id in rs.by_id}


def calibration_files(rs: RealSpeech) -> list[RealFile]:
    keep = _speakers_with_cuts(rs)
    return [f for f in rs.files if f.split == TRAIN and is_calibration(f.speaker_group) and f.speaker_group not in keep]


def training_files(rs: RealSpeech) -> list[RealFile]:
    calibration = {f.id for f in calibration_files(rs)}
    return [f for f in rs.files if f.split == TRAIN and f.id not in calibration]
