"""``wakeword serve``: the listening pipeline as a daemon.

Threads: ``wakeword-pipeline`` reads the (recovering) source and runs the
engine; ``wakeword-net`` serves the control, event and Wyoming sockets;
``wakeword-hook-N`` run hooks; the main thread waits for signals. SIGTERM
or SIGINT stop the source, give the hand-off and the hooks a moment to
finish (then abandon them), flush the event socket and exit 0, within 2 s.
SIGHUP re-reads ``--config`` (command-line flags still win) and swaps the
engine and hooks between two blocks; a bad file is logged and the old
configuration kept. Socket addresses are read once, at startup.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from wakeword.config import Settings, add_command_parser
from wakeword.daemon.address import Address, parse_address
from wakeword.daemon.hooks import HookRunner
from wakeword.daemon.logs import configure_logging
from wakeword.daemon.recovery import RecoveringSource
from wakeword.errors import ConfigError, WakewordError
from wakeword.events import Detection, Event, event_to_dict
from wakeword.pcm import SAMPLE_RATE

__all__ = ["Daemon", "add_parser", "run"]

log = logging.getLogger(__name__)

SHUTDOWN_PIPELINE_S = 0.8  # the source notices stop() within 0.5 s
SHUTDOWN_HANDOFF_S = 0.4
SHUTDOWN_HOOKS_S = 0.3
SHUTDOWN_FLUSH_S = 0.2


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from wakeword.cli.app import add_engine_options, add_file_source_options, add_microphone_options

    p = add_command_parser(
        subparsers,
        "serve",
        help="run as a background listener (hooks, event socket, Wyoming)",
        description="Listen until SIGTERM/SIGINT (SIGHUP reloads --config). The source is a microphone "
        "(--device; re-opened with backoff if it fails or is unplugged) or --input FILE|- "
        "(--realtime serves a file as if it were a microphone). Events go to stdout (as `run` "
        "prints them), to hooks, to the --events socket; --wyoming serves Home Assistant.",
        verbose_help="debug logging",
    )
    add_file_source_options(p, required=False)
    add_microphone_options(p)
    add_engine_options(p)
    g = p.add_argument_group("daemon")
    g.add_argument(
        "--no-listen",
        dest="listen",
        action="store_false",
        default=True,
        help="open no audio source: serve Wyoming clients only",
    )
    _add_hook_options(g)
    _add_socket_options(g)
    return p


def _add_hook_options(g: argparse._ArgumentGroup) -> None:
    """What runs on each event: commands, Python callbacks, and their limits."""
    from wakeword.config import default_text as D
    from wakeword.config import positive_int

    S = argparse.SUPPRESS
    g.add_argument(
        "--exec",
        action="append",
        default=S,
        metavar="CMD",
        help="run CMD on every detection, without a shell; placeholders {keyword} {score} {time_s} (repeatable)",
    )
    g.add_argument(
        "--exec-transcript",
        action="append",
        default=S,
        metavar="CMD",
        help="run CMD on every transcript; placeholders {keyword} {text} {language} {time_s} (repeatable)",
    )
    g.add_argument(
        "--callback",
        action="append",
        default=S,
        metavar="MODULE:FUNCTION|NAME",
        help="call a Python function with each event (a wakeword.callbacks entry point by NAME)",
    )
    g.add_argument(
        "--hook-timeout-s", type=float, default=S, help=f"kill a hook after this many seconds{D('hook_timeout_s')}"
    )
    g.add_argument(
        "--hook-concurrency", type=positive_int, default=S, help=f"hooks running at once{D('hook_concurrency')}"
    )


def _add_socket_options(g: argparse._ArgumentGroup) -> None:
    """The event, Wyoming and control sockets, and the log format."""
    from wakeword.config import default_text as D

    S = argparse.SUPPRESS
    g.add_argument(
        "--events",
        default=S,
        metavar="unix:PATH|tcp://HOST:PORT",
        help="publish events as JSON lines on this socket (TCP binds 127.0.0.1 by default)",
    )
    g.add_argument(
        "--wyoming",
        default=S,
        metavar="tcp://HOST:PORT|unix:PATH",
        help="serve the Wyoming wake-word protocol, e.g. tcp://127.0.0.1:10400",
    )
    g.add_argument(
        "--control",
        default=S,
        metavar="unix:PATH|tcp://HOST:PORT|none",
        help="control socket for `wakeword status` (default: $XDG_RUNTIME_DIR/wakeword/control.sock)",
    )
    g.add_argument(
        "--allow-remote",
        action="store_true",
        default=S,
        help="allow --events/--wyoming/--control on a non-loopback address",
    )
    g.add_argument("--log-format", choices=("text", "json"), default=S, help=f"stderr log format{D('log_format')}")


@dataclasses.dataclass(frozen=True)
class Addresses:
    events: Address | None
    wyoming: Address | None
    control: Address | None

    @classmethod
    def from_settings(cls, s: Settings) -> Addresses:
        from wakeword.daemon.control import control_address

        return cls(
            events=parse_address(s.events, "--events", s.allow_remote) if s.events else None,
            wyoming=parse_address(s.wyoming, "--wyoming", s.allow_remote) if s.wyoming else None,
            control=control_address(s.control, s.allow_remote),
        )


def _shifted(event: Event, samples: int) -> Event:
    """The event on the daemon's clock, which runs on across engine reloads."""
    if isinstance(event, Detection):
        return dataclasses.replace(event, sample=event.sample + samples)
    return dataclasses.replace(event, start_sample=event.start_sample + samples, end_sample=event.end_sample + samples)


class Daemon:
    """The pieces of ``wakeword serve`` and their lifecycle; ``run`` adds signals and the CLI.

    ``source_factory`` opens a fresh audio source (None: no local listening);
    ``reload_settings`` re-reads the configuration on SIGHUP; ``engine_factory``
    builds the engine from settings (the test seam, with ``out`` for stdout).
    """

    def __init__(
        self,
        settings: Settings,
        source_factory: Callable[[], Any] | None,
        reload_settings: Callable[[], Settings] | None = None,
        engine_factory: Callable[[Settings], Any] | None = None,
        out: TextIO | None = None,
        initial_backoff_s: float = 0.5,
    ) -> None:
        from wakeword.config import build_engine

        self.settings = settings
        self.addresses = Addresses.from_settings(settings)  # bad addresses fail before anything starts
        self.source_factory = source_factory
        self.reload_settings = reload_settings
        self.engine_factory = engine_factory or build_engine
        self.out = out
        self.initial_backoff_s = initial_backoff_s
        self.started_at = time.monotonic()
        self.stop_requested = threading.Event()
        self.finished = threading.Event()
        self.error: BaseException | None = None
        self.counters = {"blocks": 0, "detections": 0, "transcripts": 0, "reloads": 0, "reload_failures": 0}
        self.source: RecoveringSource | None = None
        self.engine: Any = None
        self.hooks: HookRunner | None = None
        self.net: Any = None
        self.events: Any = None
        self.wyoming: Any = None
        self.control: Any = None
        self._thread: threading.Thread | None = None
        self._next_engine: Any = None
        self._sample_offset = 0
        self._last_detection: dict[str, int] = {}  # keyword -> sample, on the daemon's clock
        self._reload_requested = threading.Event()

    # --- lifecycle --------------------------------------------------------------

    def start(self) -> None:
        s = self.settings
        self.hooks = HookRunner.from_settings(s)
        if self.source_factory is not None:
            self.engine = self.engine_factory(s)
        a = self.addresses
        if a.events or a.wyoming or a.control:
            from wakeword.daemon.net import NetworkLoop

            self.net = NetworkLoop()
        if a.control is not None:
            from wakeword.daemon.control import ControlServer

            self.control = ControlServer(self.net, a.control, self.status)
            self.control.start()
        if a.events is not None:
            from wakeword.daemon.events_socket import EventSocketServer

            self.events = EventSocketServer(self.net, a.events)
            self.events.start()
        if a.wyoming is not None:
            from wakeword.classifiers import load_classifier
            from wakeword.daemon.wyoming_server import WyomingServer

            self.wyoming = WyomingServer(
                self.net,
                a.wyoming,
                load_classifier(s.model),
                lambda: self.settings.engine_config(),
                language=s.language,
            )
            self.wyoming.start()
        if self.source_factory is not None:
            self.source = RecoveringSource(self.source_factory, self.initial_backoff_s)
            self._thread = threading.Thread(target=self._pipeline, name="wakeword-pipeline")
            self._thread.start()
        log.info("serving (control: %s)", a.control or "none")

    def request_stop(self) -> None:
        """Thread- and signal-safe: the main loop shuts down."""
        self.stop_requested.set()
        if self.source is not None:
            self.source.stop()

    def request_reload(self) -> None:
        self._reload_requested.set()

    def wait(self) -> None:
        """Block until a stop is requested or the source ends; reload when asked to."""
        while not self.stop_requested.wait(0.1):
            if self._reload_requested.is_set():
                self._reload_requested.clear()
                self.reload()
            if self.finished.is_set():
                break

    def close(self) -> None:
        """Stop everything, in order, within about 2 s. Idempotent."""
        self.request_stop()
        if self._thread is not None:
            self._thread.join(SHUTDOWN_PIPELINE_S)
            if self._thread.is_alive():
                log.warning("the pipeline thread did not stop in %.1f s", SHUTDOWN_PIPELINE_S)
            else:
                self._thread = None
        if self.engine is not None and self._thread is None:
            for event in self.engine.close(timeout_s=SHUTDOWN_HANDOFF_S):
                self._emit(event)
            self.engine = None
        if self.hooks is not None:
            self.hooks.close(SHUTDOWN_HOOKS_S)
        for server, args in ((self.events, (SHUTDOWN_FLUSH_S,)), (self.wyoming, ()), (self.control, ())):
            if server is not None:
                try:
                    server.close(*args)
                except Exception:
                    log.exception("error while closing %r", server)
        self.events = self.wyoming = self.control = None
        if self.net is not None:
            self.net.close()
            self.net = None

    # --- the pipeline -------------------------------------------------------------

    def _pipeline(self) -> None:
        assert self.source is not None
        try:
            with contextlib.closing(self.source.blocks()) as blocks:
                for block in blocks:
                    if self._next_engine is not None:
                        self._swap_engine()
                    events = self.engine.process(block)
                    self.counters["blocks"] += 1
                    for event in events:
                        self._emit(event)
                    if self.stop_requested.is_set():
                        break
                else:
                    if not self.stop_requested.is_set():  # a file ended: finish its hand-off
                        for event in self.engine.flush():
                            self._emit(event)
                        log.info("%s: end of input", self.source.name)
        except WakewordError as e:
            self.error = e
        except Exception as e:  # a bug: log it with its traceback, then stop cleanly
            log.exception("the pipeline failed")
            self.error = e
        finally:
            self.finished.set()

    def _swap_engine(self) -> None:
        old, self.engine, self._next_engine = self.engine, self._next_engine, None
        self._sample_offset += old.stats.samples
        for event in old.close(timeout_s=0.0):
            self._emit(event)

    def _emit(self, event: Event) -> None:
        """Fan an event out; nothing here blocks on a consumer."""
        if self._sample_offset:
            event = _shifted(event, self._sample_offset)
        if isinstance(event, Detection):
            # a fresh engine (after a reload) does not know what the old one just fired
            last = self._last_detection.get(event.keyword)
            if last is not None and event.sample - last < self.settings.refractory_s * SAMPLE_RATE:
                return
            self._last_detection[event.keyword] = event.sample
        self.counters["detections" if event.kind == "detection" else "transcripts"] += 1
        log.info("%s %s at %.2f s", event.kind, event.keyword, event.time_s, extra={"event": event_to_dict(event)})
        if self.out is not None:
            from wakeword.cli.app import format_event

            self.out.write(format_event(event, self.settings.json) + "\n")
            self.out.flush()
        hooks, events = self.hooks, self.events
        if hooks is not None:
            hooks.submit(event)
        if events is not None:
            events.publish(event)

    # --- reload and status -----------------------------------------------------------

    def reload(self) -> None:
        """Re-read the configuration; swap the engine (between blocks) and the hooks."""
        if self.reload_settings is None:
            log.warning("SIGHUP: nothing to reload")
            return
        try:
            settings = self.reload_settings()
            engine = self.engine_factory(settings) if self.source_factory is not None else None
            hooks = HookRunner.from_settings(settings)
        except WakewordError as e:
            self.counters["reload_failures"] += 1
            log.error("reload failed, keeping the running configuration: %s", e)
            return
        if (
            Addresses.from_settings(settings) != self.addresses
            or settings.model != self.settings.model
            and self.wyoming
        ):
            log.warning("socket addresses and the Wyoming model change only on restart")
        old_hooks, self.hooks = self.hooks, hooks
        if old_hooks is not None:
            old_hooks.close(SHUTDOWN_HOOKS_S)
        if engine is not None:
            self._next_engine = engine
        self.settings = settings
        self.counters["reloads"] += 1
        log.info("configuration reloaded")

    def status(self) -> dict[str, Any]:
        src = self.source
        out: dict[str, Any] = {
            "uptime_s": round(time.monotonic() - self.started_at, 3),
            "state": (
                "stopping"
                if self.stop_requested.is_set()
                else "ended"
                if self.finished.is_set()
                else "no source"
                if src is None
                else "listening"
                if src.connected
                else "reconnecting"
            ),
            **self.counters,
            "audio_s": round(self.engine.stats.audio_s + self._sample_offset / SAMPLE_RATE, 3) if self.engine else 0.0,
            "overflows": src.overflows if src else 0,
            "dropped_blocks": src.dropped_blocks if src else 0,
            "reconnects": src.reconnects if src else 0,
            "device_errors": src.failures if src else 0,
            "last_device_error": src.last_error if src else "",
        }
        if self.hooks is not None:
            out["hooks"] = self.hooks.as_dict()
        if self.events is not None:
            out["events"] = self.events.stats()
        if self.wyoming is not None:
            out["wyoming"] = self.wyoming.stats()
        return out


def _source_factory(args: argparse.Namespace, settings: Settings) -> Callable[[], Any] | None:
    from wakeword.cli.app import open_file_source, open_microphone_source

    if not args.listen:
        return None
    if args.input is not None:
        if settings.device is not None:
            raise ConfigError("--input and --device are alternatives: give one")
        path = args.input
        return lambda: open_file_source(path, settings)
    if args.duration_s is not None and args.duration_s <= 0:
        raise ConfigError("--duration-s must be positive")
    return lambda: open_microphone_source(args, settings)


def run(args: argparse.Namespace) -> int:
    from wakeword.cli.app import settings_from_args

    stop_signals: list[int] = []
    daemon: Daemon | None = None

    def on_stop(signum: int, frame: object) -> None:
        stop_signals.append(signum)
        if daemon is not None:
            daemon.request_stop()

    def on_hup(signum: int, frame: object) -> None:
        if daemon is not None:
            daemon.request_reload()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_hup)

    settings = settings_from_args(args)
    configure_logging(settings.log_format, args.verbose)
    reload_args = argparse.Namespace(**{**vars(args), "save_config": None})
    daemon = Daemon(
        settings,
        _source_factory(args, settings),
        reload_settings=lambda: settings_from_args(reload_args),
        out=sys.stdout,
    )
    try:
        if not stop_signals:
            daemon.start()
            if stop_signals:
                daemon.request_stop()
            daemon.wait()
    finally:
        if stop_signals:
            log.info("signal %d: shutting down", stop_signals[0])
        daemon.close()
        if daemon._thread is not None:  # stuck (e.g. writing to a stdout nobody reads): do not hang at exit
            log.error("the pipeline did not stop; exiting without it")
            logging.shutdown()
            os._exit(1)
    if daemon.error is not None:
        raise daemon.error
    return 0
