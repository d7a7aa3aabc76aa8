"""User settings: one flat set of keys shared by the CLI flags and the TOML config file.

A TOML key is the flag's long name with ``-`` replaced by ``_``
(``--hop-ms 80`` ↔ ``hop_ms = 80``). Precedence: built-in defaults, then the
config file, then flags given on the command line.

The engine's defaults live once, in the component configs (:class:`VadConfig`,
:class:`DetectorConfig`, :class:`CaptureConfig`, :class:`EngineConfig`);
:class:`Settings` reads them from there, a key's type comes from its
annotation, and the CLI's help text prints :func:`default_text`, so the three
cannot drift (``tests/test_settings_flags.py`` checks it).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import tomllib
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wakeword.asr.base import make_transcriber
from wakeword.engine import Engine, EngineConfig
from wakeword.errors import ConfigError
from wakeword.stream.capture import CaptureConfig
from wakeword.stream.detector import DetectorConfig
from wakeword.stream.vad import VadConfig

__all__ = [
    "DEFAULT_MODEL",
    "default_text",
    "Settings",
    "add_command_parser",
    "build_engine",
    "load_settings_file",
    "positive_int",
    "save_settings_file",
]

DEFAULT_MODEL = "default"


def _default(config: type, name: str) -> Any:
    """A component config's default for ``name``: the one place it is written."""
    return {f.name: f.default for f in dataclasses.fields(config)}[name]


@dataclass(frozen=True)
class Settings:
    """Every user-facing option of ``run``/``listen``; units are in the names."""

    model: str = DEFAULT_MODEL
    keywords: tuple[str, ...] | None = None
    threshold: float | None = None  # None: the model's recommended thresholds, else 0.5
    thresholds: dict[str, float] = field(default_factory=dict)
    smoothing_hops: int = _default(DetectorConfig, "smoothing_hops")
    refractory_s: float = _default(DetectorConfig, "refractory_s")
    hop_ms: int | None = None  # None: the model's own hop (80 ms for the shipped model), else 100
    preroll_s: float = _default(EngineConfig, "preroll_s")
    vad: bool = _default(VadConfig, "enabled")
    vad_aggressiveness: int = _default(VadConfig, "aggressiveness")
    vad_frame_ms: int = _default(VadConfig, "frame_ms")
    vad_hangover_ms: int = _default(VadConfig, "hangover_ms")
    # hand-off to Whisper
    handoff: bool = True
    language: str | None = None
    languages: tuple[str, ...] | None = None
    asr_backend: str = "faster-whisper"  # a name in wakeword.asr.base.TRANSCRIBERS: faster-whisper, onnx
    asr_model: str = "base"
    compute_type: str = "int8"
    beam_size: int = 1
    command_silence_s: float = _default(CaptureConfig, "silence_s")
    command_max_s: float = _default(CaptureConfig, "max_s")
    # sources
    device: str | None = None
    block_ms: float = 50.0
    rate: int = 16_000
    channels: int = 1
    format: str = "s16le"
    realtime: bool = False
    json: bool = False
    # the daemon (`wakeword serve`): hooks, sockets, logs
    exec: tuple[tuple[str, ...], ...] = ()  # argv templates run on every detection
    exec_transcript: tuple[tuple[str, ...], ...] = ()  # ... on every transcript
    hooks: dict[str, dict[str, tuple[tuple[str, ...], ...]]] = field(default_factory=dict)  # per keyword
    callback: tuple[str, ...] = ()  # module:function or a `wakeword.callbacks` entry point
    hook_timeout_s: float = 10.0
    hook_concurrency: int = 2
    events: str | None = None
    wyoming: str | None = None
    control: str | None = None
    allow_remote: bool = False
    log_format: str = "text"

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{f.name} must be a finite number, got {value!r}")
        self.engine_config()  # validates every engine option now, not mid-stream
        if self.hook_timeout_s <= 0 or self.hook_concurrency < 1:
            raise ConfigError("hook_timeout_s must be > 0 and hook_concurrency >= 1")
        if self.log_format not in ("text", "json"):
            raise ConfigError(f"log_format must be text or json, got {self.log_format!r}")

    def engine_config(self) -> EngineConfig:
        return EngineConfig(
            hop_ms=self.hop_ms,
            preroll_s=self.preroll_s,
            vad=VadConfig(
                enabled=self.vad,
                aggressiveness=self.vad_aggressiveness,
                frame_ms=self.vad_frame_ms,
                hangover_ms=self.vad_hangover_ms,
            ),
            detector=DetectorConfig(
                threshold=self.threshold,
                thresholds=dict(self.thresholds),
                smoothing_hops=self.smoothing_hops,
                refractory_s=self.refractory_s,
                keywords=self.keywords,
            ),
            handoff=CaptureConfig(silence_s=self.command_silence_s, max_s=self.command_max_s),
        )

    @classmethod
    def from_mapping(cls, values: dict[str, Any], origin: str) -> Settings:
        """Build settings from loose values (a TOML table or parsed flags), checking names and types."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"{origin}: unknown setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
        coerced = {name: _coerce(name, value, origin) for name, value in values.items()}
        try:
            return cls(**coerced)
        except ConfigError as e:
            raise ConfigError(f"{origin}: {e}") from None

    def to_mapping(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def merged(self, values: dict[str, Any], origin: str) -> Settings:
        return Settings.from_mapping({**self.to_mapping(), **values}, origin)


_HINTS = typing.get_type_hints(Settings)


def default_text(name: str) -> str:
    """`` (DEFAULT)`` for a setting's help text, from :class:`Settings` itself."""
    value = {f.name: f.default for f in dataclasses.fields(Settings)}[name]
    if value is None or value is dataclasses.MISSING:
        return ""
    if isinstance(value, bool):
        return " (on)" if value else " (off)"
    return f" ({value})"


def _scalar_kind(name: str) -> type | None:
    """``int``, ``float``, ``bool`` or ``str`` for a scalar key (``X | None`` counts as ``X``), else ``None``."""
    hint = _HINTS[name]
    kinds = [k for k in typing.get_args(hint) if k is not type(None)] if typing.get_origin(hint) else [hint]
    return kinds[0] if len(kinds) == 1 and kinds[0] in (int, float, bool, str) else None


HOOK_EVENT_KEYS = ("exec", "exec_transcript")


def _coerce_scalar(kind: type, value: Any, bad: Callable[[str], ConfigError]) -> Any:
    """``value`` as an ``int``, ``float``, ``bool`` or ``str`` setting (a bool is no number here)."""
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        return float(value)
    if kind is bool:
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if not isinstance(value, str):
        raise bad("a string")
    return value


def _coerce(name: str, value: Any, origin: str) -> Any:
    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{origin}: {name} must be {expected}, got {value!r}")

    kind = None if name == "device" else _scalar_kind(name)
    if kind is not None:
        return _coerce_scalar(kind, value, bad)

    if name == "device":
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise bad("a device index or name")
        return str(value)
    if name in ("keywords", "languages"):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise bad("a list of names")
        return tuple(value)
    if name == "thresholds":
        if not isinstance(value, dict):
            raise bad("a table of keyword = threshold")
        out = {}
        for k, v in value.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ConfigError(f"{origin}: thresholds.{k} must be a number, got {v!r}")
            out[str(k)] = float(v)
        return out
    if name in HOOK_EVENT_KEYS:
        return _commands(value, f"{origin}: {name}")
    if name == "callback":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
            raise bad("a list of module:function or entry-point names")
        return tuple(value)
    if name == "hooks":
        if not isinstance(value, dict):
            raise bad("a table of [hooks.KEYWORD] tables")
        hooks: dict[str, dict[str, tuple[tuple[str, ...], ...]]] = {}
        for keyword, table in value.items():
            if not isinstance(table, dict) or not table or set(table) - set(HOOK_EVENT_KEYS):
                raise ConfigError(
                    f"{origin}: hooks.{keyword} must be a table with {' and/or '.join(HOOK_EVENT_KEYS)}, got {table!r}"
                )
            hooks[str(keyword)] = {
                key: _commands(cmds, f"{origin}: hooks.{keyword}.{key}") for key, cmds in table.items()
            }
        return hooks
    raise ConfigError(f"{origin}: unknown setting {name}")  # pragma: no cover - guarded by from_mapping


def _commands(value: Any, where: str) -> tuple[tuple[str, ...], ...]:
    """Hook commands as argv lists: a string is one command line (split like a shell
    would, once, here; no shell ever runs it), a list holds command lines or argv lists."""
    import shlex

    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise ConfigError(f"{where} must be a command line or a list of them, got {value!r}")
    out = []
    for item in items:
        if isinstance(item, str):
            try:
                argv = shlex.split(item)
            except ValueError as e:
                raise ConfigError(f"{where}: cannot split {item!r} into arguments ({e})") from None
        elif isinstance(item, (list, tuple)) and all(isinstance(a, str) for a in item):
            argv = list(item)
        else:
            raise ConfigError(f"{where}: expected a command line or a list of arguments, got {item!r}")
        if not argv or not argv[0]:
            raise ConfigError(f"{where}: empty command")
        out.append(tuple(argv))
    return tuple(out)


def load_settings_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file into a mapping (validated when merged into :class:`Settings`)."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a config file") from None
    except PermissionError:
        raise ConfigError(f"{path}: permission denied") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML ({e})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file") from None


def save_settings_file(settings: Settings, path: str | Path, force: bool = False) -> None:
    """Write settings as TOML; an existing file is only replaced with ``force``."""
    import tomli_w

    path = Path(path)
    if path.exists() and not force:
        raise ConfigError(f"{path}: already exists; pass --force to overwrite it")
    text = tomli_w.dumps(settings.to_mapping())
    try:
        path.write_text("# wakeword settings; keys match the command-line flags\n" + text)
    except OSError as e:
        raise ConfigError(f"{path}: cannot write config file ({e.strerror or e})") from None


def positive_int(text: str) -> int:
    """argparse type for counts (--top-k, --beam-size, --threads): a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_command_parser(
    subparsers: Any,
    name: str,
    *,
    help: str,
    description: str | None = None,
    verbose_help: str = "log details on stderr",
) -> argparse.ArgumentParser:
    """A command module's subparser with the ``-v/--verbose`` count every command takes;
    ``wakeword.cli.app`` applies it to the ``wakeword`` logger before the command runs."""
    p = subparsers.add_parser(name, help=help, description=description)
    p.add_argument("-v", "--verbose", action="count", default=0, help=verbose_help)
    return p


def build_engine(settings: Settings) -> Engine:
    """The engine ``settings`` describe: its model, detection, gate and, unless ``handoff`` is off, the transcriber."""
    from wakeword.classifiers.registry import load_classifier

    classifier = load_classifier(settings.model)
    transcriber = None
    if settings.handoff:
        transcriber = make_transcriber(
            settings.asr_backend,
            model=settings.asr_model,
            compute_type=settings.compute_type,
            beam_size=settings.beam_size,
        )
    return Engine(
        classifier,
        settings.engine_config(),
        transcriber=transcriber,
        language=settings.language,
        languages=settings.languages,
    )
