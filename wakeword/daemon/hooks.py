"""Command hooks and Python callbacks, run per detection or transcript off the audio path.

A command is an argv list, split once when the settings are loaded, and
run without a shell: placeholders (``{keyword}``, ``{score}``, ``{time_s}``,
``{text}``, ``{language}``) are substituted inside each argument, so a
transcript such as ``; rm -rf ~`` reaches the program as one inert argument.
Templates are checked at startup: only those names, no attribute or index
access (``{keyword.__class__}`` is refused).

``submit`` never blocks: jobs go to a bounded queue served by
``hook_concurrency`` named worker threads; a full queue drops the job and
counts it. A command that outlives ``hook_timeout_s`` is killed with its
process group. Failures are logged and counted, never raised.
"""

from __future__ import annotations

import importlib
import logging
import os
import queue
import signal
import string
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from wakeword.config import Settings
from wakeword.errors import ConfigError
from wakeword.events import Detection, Event

__all__ = ["FIELDS", "HookRunner", "load_callback", "render", "validate_template"]

log = logging.getLogger(__name__)

FIELDS = ("keyword", "score", "time_s", "text", "language")
ENTRY_POINT_GROUP = "wakeword.callbacks"
ANY = "*"


def validate_template(argv: Sequence[str], where: str) -> None:
    """Refuse placeholders other than :data:`FIELDS`, attribute/index access and nested fields."""
    formatter = string.Formatter()
    for arg in argv:
        try:
            parsed = list(formatter.parse(arg))
        except ValueError as e:
            raise ConfigError(
                f"{where}: bad placeholder in {arg!r} ({e}); write {{{{ and }}}} for literal braces"
            ) from None
        for _, name, spec, _ in parsed:
            if name is None:
                continue
            if name not in FIELDS:
                raise ConfigError(
                    f"{where}: unknown placeholder {{{name}}} in {arg!r}; valid: "
                    + ", ".join("{" + f + "}" for f in FIELDS)
                )
            if spec and "{" in spec:
                raise ConfigError(f"{where}: nested placeholder in {arg!r}")


def event_values(event: Event) -> dict[str, object]:
    """The placeholder values of an event; those it lacks are empty strings."""
    if isinstance(event, Detection):
        return {
            "keyword": event.keyword,
            "score": round(float(event.score), 4),
            "time_s": round(event.time_s, 3),
            "text": "",
            "language": "",
        }
    return {
        "keyword": event.keyword,
        "score": "",
        "time_s": round(event.time_s, 3),
        "text": event.text,
        "language": event.language,
    }


def render(argv: Sequence[str], values: dict[str, object]) -> list[str]:
    """Substitute placeholders argument by argument (templates were validated)."""
    return [arg.format_map(values) for arg in argv]


def load_callback(spec: str) -> Callable[[Event], object]:
    """``module:function`` (a module path), or the name of a ``wakeword.callbacks`` entry point."""
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        try:
            target: object = importlib.import_module(module_name)
            for part in attr.split("."):
                target = getattr(target, part)
        except ImportError as e:
            raise ConfigError(f"--callback {spec}: cannot import {module_name} ({e})") from None
        except AttributeError:
            raise ConfigError(f"--callback {spec}: {module_name} has no {attr}") from None
    else:
        from importlib.metadata import entry_points

        found = entry_points(group=ENTRY_POINT_GROUP, name=spec)
        if not found:
            names = sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
            raise ConfigError(
                f"--callback {spec}: expected module:function or an entry point of {ENTRY_POINT_GROUP} "
                f"({', '.join(names) or 'none installed'})"
            )
        try:
            target = next(iter(found)).load()
        except Exception as e:
            raise ConfigError(f"--callback {spec}: cannot load the entry point ({e})") from None
    if not callable(target):
        raise ConfigError(f"--callback {spec}: not callable")
    return target


@dataclass(frozen=True)
class _Rule:
    keyword: str  # or ANY
    kind: str  # "detection" or "transcript"; "" for both (Python callbacks)
    argv: tuple[str, ...] | None = None
    function: Callable[[Event], object] | None = None

    def matches(self, event: Event) -> bool:
        return (self.keyword in (ANY, event.keyword)) and self.kind in ("", event.kind)


def rules_from_settings(settings: Settings) -> list[_Rule]:
    """Every hook the settings define, templates validated, callbacks imported."""
    kinds = {"exec": "detection", "exec_transcript": "transcript"}
    rules: list[_Rule] = []
    for key, kind in kinds.items():
        for argv in getattr(settings, key):
            validate_template(argv, f"--{key.replace('_', '-')}")
            rules.append(_Rule(ANY, kind, argv=tuple(argv)))
    for keyword, table in settings.hooks.items():
        for key, commands in table.items():
            for argv in commands:
                validate_template(argv, f"hooks.{keyword}.{key}")
                rules.append(_Rule(keyword, kinds[key], argv=tuple(argv)))
    for spec in settings.callback:
        rules.append(_Rule(ANY, "", function=load_callback(spec)))
    return rules


class HookRunner:
    """Runs the matching commands and callbacks for each event on worker threads."""

    def __init__(self, rules: list[_Rule], timeout_s: float = 10.0, concurrency: int = 2, queue_size: int = 64) -> None:
        self.rules = rules
        self.timeout_s = timeout_s
        self.stats = {"runs": 0, "failures": 0, "timeouts": 0, "dropped": 0}
        self._queue: queue.Queue[tuple[_Rule, Event] | None] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen] = set()
        self._workers = [
            threading.Thread(target=self._loop, name=f"wakeword-hook-{i}") for i in range(concurrency if rules else 0)
        ]
        for worker in self._workers:
            worker.start()

    @classmethod
    def from_settings(cls, settings: Settings) -> HookRunner:
        return cls(rules_from_settings(settings), settings.hook_timeout_s, settings.hook_concurrency)

    def _count(self, name: str) -> None:
        with self._lock:  # several workers count at once
            self.stats[name] += 1

    def submit(self, event: Event) -> None:
        """Queue every hook that matches ``event``; never blocks."""
        for rule in self.rules:
            if rule.matches(event):
                try:
                    self._queue.put_nowait((rule, event))
                except queue.Full:
                    self.stats["dropped"] += 1
                    log.warning("hook queue full: dropped a hook for the %s of %r", event.kind, event.keyword)

    def _loop(self) -> None:
        for rule, event in iter(self._queue.get, None):
            try:
                if rule.function is not None:
                    self._call(rule.function, event)
                else:
                    assert rule.argv is not None
                    self._exec(rule.argv, event)
            finally:
                self._queue.task_done()
        self._queue.task_done()  # the None that ended the loop

    def _call(self, fn: Callable[[Event], object], event: Event) -> None:
        self._count("runs")
        try:
            fn(event)
        except Exception:
            self._count("failures")
            log.exception(
                "callback %s failed on the %s of %r", getattr(fn, "__qualname__", fn), event.kind, event.keyword
            )

    def _exec(self, template: tuple[str, ...], event: Event) -> None:
        self._count("runs")
        try:
            argv = render(template, event_values(event))
        except (ValueError, TypeError) as e:  # e.g. {score:.2f} on a transcript, which has no score
            self._count("failures")
            log.error("hook %s: cannot fill in its placeholders for a %s (%s)", template[0], event.kind, e)
            return
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
            )
        except OSError as e:
            self._count("failures")
            log.error("hook %s: cannot start it (%s)", argv[0], e.strerror or e)
            return
        with self._lock:
            self._running.add(proc)
        try:
            try:
                _, err = proc.communicate(timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                self._count("timeouts")
                _kill(proc)
                proc.communicate()
                log.error("hook %s: killed after %.1f s", argv[0], self.timeout_s)
                return
        finally:
            with self._lock:
                self._running.discard(proc)
        if proc.returncode != 0:
            self._count("failures")
            tail = err.decode(errors="replace").strip().splitlines()[-1:] if err else []
            log.error("hook %s exited with %s%s", argv[0], proc.returncode, f": {tail[0][:200]}" if tail else "")
        else:
            log.debug("hook %s done", argv[0])

    def wait(self) -> None:
        """Block until every queued hook has finished (for tests and soak runs)."""
        self._queue.join()

    def close(self, timeout_s: float = 0.5) -> None:
        """Let running hooks finish for up to ``timeout_s``, kill what is left, join the workers."""
        import time

        deadline = time.monotonic() + timeout_s
        while True:  # queued jobs that have not started are cancelled
            try:
                if self._queue.get_nowait() is not None:
                    self.stats["dropped"] += 1
                self._queue.task_done()
            except queue.Empty:
                break
        for _ in self._workers:
            self._queue.put(None)
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            running = list(self._running)
        for proc in running:
            _kill(proc)
        for worker in self._workers:
            worker.join()
        self._workers = []

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return dict(self.stats)


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
