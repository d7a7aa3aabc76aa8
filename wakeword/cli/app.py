"""The ``wakeword`` command line.

Errors a user can cause (``WakewordError``) become one line on stderr and a
non-zero exit code; only bugs show a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

from wakeword import __version__
from wakeword.config import Settings, build_engine, load_settings_file, save_settings_file
from wakeword.config import default_text as D
from wakeword.errors import ConfigError, WakewordError

log = logging.getLogger("wakeword")

# Subcommands that live in their own modules, imported only when used: name -> (module, help).
EXTERNAL_COMMANDS: dict[str, tuple[str, str]] = {
    "export": ("wakeword.export.command", "export a Hugging Face audio classifier to (quantized) ONNX"),
    "classify": ("wakeword.cli.classify", "classify whole clips with a model"),
    "train": ("wakeword.training.cli", "train a keyword model from synthetic speech"),
    "transcribe": ("wakeword.cli.transcribe", "run the Whisper stage alone on a file (language ID + text)"),
    "bench": ("wakeword.tools.bench", "latency, CPU and memory per stage, backends side by side"),
    "eval": ("wakeword.tools.evaluate", "accuracy, recall, false accepts per hour and a DET curve on labelled audio"),
    "serve": ("wakeword.daemon.serve", "run as a background listener (hooks, event socket, Wyoming)"),
    "status": ("wakeword.daemon.control", "query a running `wakeword serve` for its counters"),
    "install-service": ("wakeword.daemon.service", "write a systemd unit for `wakeword serve`"),
}


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line like every other error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"wakeword: error: {message} (see `{self.prog} --help`)\n")


def _keyword_thresholds(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected KEYWORD=VALUE[,KEYWORD=VALUE], got {item!r}") from None
        if not sep or not name.strip():
            raise argparse.ArgumentTypeError(f"expected KEYWORD=VALUE[,KEYWORD=VALUE], got {item!r}")
    return out


def add_file_source_options(p: argparse.ArgumentParser, required: bool) -> None:
    """``--input FILE|-`` with the raw-PCM options and ``--realtime`` (``run``, ``serve``)."""
    p.add_argument(
        "--input", "-i", required=required, default=None, metavar="FILE|-", help="audio file, or - for raw PCM on stdin"
    )
    g = p.add_argument_group("raw input (--input -)")
    g.add_argument("--rate", type=int, default=argparse.SUPPRESS, help=f"sample rate of raw input{D('rate')}")
    g.add_argument("--channels", type=int, default=argparse.SUPPRESS, help=f"channels of raw input{D('channels')}")
    g.add_argument(
        "--format", choices=("s16le", "f32le"), default=argparse.SUPPRESS, help=f"raw sample format{D('format')}"
    )
    p.add_argument(
        "--realtime",
        action="store_true",
        default=argparse.SUPPRESS,
        help="deliver the input no faster than real time, like a live stream",
    )


def add_microphone_options(p: argparse.ArgumentParser) -> None:
    """``--device``, ``--duration-s``, ``--block-ms`` (``listen``, ``serve``)."""
    p.add_argument("--device", "-d", default=argparse.SUPPRESS, help="device index or name (see `wakeword devices`)")
    p.add_argument("--duration-s", type=float, default=None, help="stop after this many seconds of audio")
    p.add_argument(
        "--block-ms", type=float, default=argparse.SUPPRESS, help=f"device block length in ms{D('block_ms')}"
    )


def open_file_source(path: str, settings: Settings):
    """The source behind ``--input``: a file, or raw PCM on stdin for ``-``."""
    from wakeword.audio.sources import FileSource, RawStreamSource

    if path == "-":
        return RawStreamSource(
            rate=settings.rate,
            channels=settings.channels,
            sample_format=settings.format,
            realtime=settings.realtime,
        )
    return FileSource(path, realtime=settings.realtime)


def open_microphone_source(args: argparse.Namespace, settings: Settings):
    """The source behind ``--device``/``--duration-s``/``--block-ms``."""
    from wakeword.audio.sources import MicrophoneSource

    if args.duration_s is not None and args.duration_s <= 0:
        raise ConfigError("--duration-s must be positive")
    return MicrophoneSource(device=settings.device, block_ms=settings.block_ms, duration_s=args.duration_s)


def add_engine_options(p: argparse.ArgumentParser) -> None:
    """Every :class:`Settings` flag of the engine, in four groups (``run``, ``listen``, ``serve``); a flag
    left out keeps the config file's value, then the default."""
    _add_detection_options(p.add_argument_group("model and detection"))
    _add_vad_options(p.add_argument_group("voice-activity gate"))
    _add_handoff_options(p.add_argument_group("hand-off: the command after the wake word, to Whisper"))
    _add_output_options(p.add_argument_group("output and configuration"))


def _add_detection_options(g: argparse._ArgumentGroup) -> None:
    S = argparse.SUPPRESS
    g.add_argument(
        "--model",
        default=S,
        help=f"default (the shipped keyword model), a model directory, or NAME[:SPEC] such as tone{D('model')}",
    )
    g.add_argument("--keywords", default=S, help="comma-separated keywords to detect (default: all of the model's)")
    g.add_argument(
        "--threshold",
        type=float,
        default=S,
        help="detection threshold for every keyword (the model's recommended one, else 0.5)",
    )
    g.add_argument(
        "--thresholds",
        type=_keyword_thresholds,
        default=S,
        metavar="KW=T[,KW=T]",
        help="per-keyword thresholds, e.g. marvin=0.8",
    )
    g.add_argument("--smoothing-hops", type=int, default=S, help=f"average scores over N hops{D('smoothing_hops')}")
    g.add_argument(
        "--refractory-s", type=float, default=S, help=f"seconds before a keyword may fire again{D('refractory_s')}"
    )
    g.add_argument(
        "--hop-ms",
        type=int,
        default=S,
        help="run the classifier every N ms while speech is present (default: the model's hop, else 100)",
    )
    g.add_argument(
        "--preroll-s", type=float, default=S, help=f"seconds of audio kept beyond the classifier window{D('preroll_s')}"
    )


def _add_vad_options(g: argparse._ArgumentGroup) -> None:
    S = argparse.SUPPRESS
    g.add_argument("--no-vad", dest="vad", action="store_false", default=S, help="classify every hop, speech or not")
    g.add_argument(
        "--vad-aggressiveness",
        type=int,
        default=S,
        choices=range(4),
        help=f"webrtcvad mode 0-3{D('vad_aggressiveness')}",
    )
    g.add_argument(
        "--vad-frame-ms", type=int, default=S, choices=(10, 20, 30), help=f"VAD frame length in ms{D('vad_frame_ms')}"
    )
    g.add_argument(
        "--vad-hangover-ms",
        type=int,
        default=S,
        help=f"keep the gate open this many ms after speech{D('vad_hangover_ms')}",
    )


def _add_handoff_options(g: argparse._ArgumentGroup) -> None:
    S = argparse.SUPPRESS
    g.add_argument(
        "--no-handoff",
        dest="handoff",
        action="store_false",
        default=S,
        help="detect only; do not capture and transcribe the command",
    )
    g.add_argument("--language", default=S, help="force the command's language (ISO code, e.g. fr)")
    g.add_argument("--languages", default=S, help="restrict language ID to these, e.g. en,fr,de")
    g.add_argument(
        "--asr-backend",
        default=S,
        help=f"Whisper backend: faster-whisper, or onnx (an ONNX export, torch-free){D('asr_backend')}",
    )
    g.add_argument(
        "--asr-model",
        default=S,
        help=f"base (shipped in a wheel), a hub name, a CTranslate2 dir, or an ONNX export dir for onnx{D('asr_model')}",
    )
    g.add_argument("--compute-type", default=S, help=f"CTranslate2 compute type{D('compute_type')}")
    g.add_argument("--beam-size", type=int, default=S, help=f"Whisper beam size{D('beam_size')}")
    g.add_argument(
        "--command-silence-s",
        type=float,
        default=S,
        help=f"seconds of silence that end a command{D('command_silence_s')}",
    )
    g.add_argument("--command-max-s", type=float, default=S, help=f"longest command in seconds{D('command_max_s')}")


def _add_output_options(g: argparse._ArgumentGroup) -> None:
    S = argparse.SUPPRESS
    g.add_argument("--json", action="store_true", default=S, help="print one JSON object per event")
    g.add_argument("--config", help="TOML file whose keys match these flags (hop_ms = 80, ...)")
    g.add_argument("--save-config", metavar="PATH", help="write the effective settings as TOML to PATH and continue")
    g.add_argument("--force", action="store_true", help="let --save-config overwrite an existing file")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="wakeword", description="On-device wake-word streaming engine.")
    parser.add_argument("--version", action="version", version=f"wakeword {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging on stderr (-vv: debug)")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v", "--verbose", action="count", default=argparse.SUPPRESS, help="more logging on stderr (-vv: debug)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _sub_add = sub.add_parser

    def add_parser(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        if kwargs.get("add_help", True):
            kwargs.setdefault("parents", [common])
        return _sub_add(name, **kwargs)

    sub.add_parser = add_parser  # type: ignore[assignment]  # every subcommand gets the shared -v; argparse offers no hook for it
    sub.required = True

    p = sub.add_parser(
        "run",
        help="detect keywords in an audio file or a raw stream on stdin",
        description="Detect keywords in an audio file (WAV, FLAC, OGG, any rate and channel count) "
        "or in raw PCM on standard input (--input -).",
    )
    add_file_source_options(p, required=True)
    add_engine_options(p)
    p.set_defaults(handler=_cmd_run)

    p = sub.add_parser(
        "listen",
        help="detect keywords from a microphone",
        description="Detect keywords live from an input device (sounddevice/PortAudio).",
    )
    add_microphone_options(p)
    add_engine_options(p)
    p.set_defaults(handler=_cmd_listen)

    p = sub.add_parser("devices", help="list audio input devices")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_cmd_devices)

    for name, (module, help_text) in EXTERNAL_COMMANDS.items():
        p = sub.add_parser(name, help=help_text, add_help=False)
        p.set_defaults(handler=None, external=module)
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    names = {f for f in Settings.__dataclass_fields__}
    given = {k: v for k, v in vars(args).items() if k in names}
    settings = Settings()
    if args.config:
        settings = settings.merged(load_settings_file(args.config), args.config)
    settings = settings.merged(given, "command line")
    if args.save_config:
        save_settings_file(settings, args.save_config, force=args.force)
        log.info("settings written to %s", args.save_config)
    return settings


def format_event(event, as_json: bool) -> str:
    """One line for an event: its JSON object, or the aligned text ``run`` prints."""
    if as_json:
        from wakeword.events import event_to_json

        return event_to_json(event)
    if event.kind == "transcript":
        return (
            f"{event.time_s:9.3f}s  {event.kind:<10} {event.keyword:<12} "
            f"[{event.language} {event.language_probability:.2f}] {event.text}"
        )
    return f"{event.time_s:9.3f}s  {event.kind:<10} {event.keyword:<12} {event.score:.3f}"


def _emit_events(engine, source, as_json: bool) -> int:
    out = sys.stdout
    count = 0
    for event in engine.stream(source):
        count += event.kind == "detection"
        out.write(format_event(event, as_json) + "\n")
        out.flush()
    s = engine.stats
    log.info(
        "%.1f s of audio, %d hops, classifier ran on %d (%.0f%%), %d detection(s)",
        s.audio_s,
        s.hops,
        s.classified_hops,
        100.0 * s.classified_hops / max(1, s.hops),
        count,
    )
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    engine = build_engine(settings)
    source = open_file_source(args.input, settings)
    with engine:
        return _emit_events(engine, source, settings.json)


def _cmd_listen(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    engine = build_engine(settings)
    source = open_microphone_source(args, settings)
    with engine:
        try:
            return _emit_events(engine, source, settings.json)
        finally:
            if source.overflows or source.dropped_blocks:
                log.warning("%d input overflow(s), %d dropped block(s)", source.overflows, source.dropped_blocks)


def _cmd_devices(args: argparse.Namespace) -> int:
    from wakeword.audio.sources import list_input_devices

    devices = list_input_devices()
    if args.json:
        for d in devices:
            print(
                json.dumps(
                    {
                        "index": d.index,
                        "name": d.name,
                        "channels": d.channels,
                        "default_rate": d.default_rate,
                        "default": d.is_default,
                    }
                )
            )
    elif not devices:
        print("no input devices")
    else:
        for d in devices:
            mark = "*" if d.is_default else " "
            print(f"{mark} {d.index:3d}  {d.name}  ({d.channels} ch, {d.default_rate:.0f} Hz)")
    return 0


def _run_external(module_name: str, command: str, argv: Sequence[str]) -> int:
    import importlib

    module = importlib.import_module(module_name)
    parser = _Parser(prog="wakeword")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    module.add_parser(sub)
    args = parser.parse_args([command, *argv])
    verbose = getattr(args, "verbose", 0)  # every command module's -v (wakeword.config.add_command_parser)
    if verbose:
        logging.getLogger("wakeword").setLevel(logging.INFO if verbose == 1 else logging.DEBUG)
    return int(module.run(args) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    logging.basicConfig(
        level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(getattr(args, "verbose", 0), 2)],
        format="wakeword: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    if sys.platform != "win32" and args.command != "serve":
        # `wakeword run ... | head` ends quietly; never for the daemon, which a client that hangs up would kill
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        external = getattr(args, "external", None)
        if external:
            index = argv.index(args.command)
            return _run_external(external, args.command, argv[index + 1 :])
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except WakewordError as e:
        print(f"wakeword: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
