"""The control socket of ``wakeword serve`` and the ``wakeword status`` client.

Protocol: the client sends one JSON line ``{"command": "status"}``; the
server answers one JSON line (the daemon's counters) and hangs up. The
socket is a Unix socket (mode 0600) in ``$XDG_RUNTIME_DIR/wakeword/`` by
default, so only its owner can query it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import socket
from collections.abc import Callable
from typing import Any

from wakeword.config import add_command_parser
from wakeword.daemon.address import Address, default_control_path, parse_address
from wakeword.daemon.net import NetworkLoop, close_stream_server, start_stream_server
from wakeword.errors import ConfigError, WakewordError

__all__ = ["ControlServer", "add_parser", "query", "run"]

log = logging.getLogger(__name__)

COMMANDS = ("status",)


class ControlServer:
    """Answers ``status`` with ``status_fn()`` (called on the network thread)."""

    def __init__(self, net: NetworkLoop, address: Address, status_fn: Callable[[], dict[str, Any]]) -> None:
        self.net = net
        self.address = address
        self.status_fn = status_fn
        self._server: asyncio.AbstractServer | None = None

    def start(self) -> None:
        self._server = self.net.call(start_stream_server(self.address, self._handle, "--control"))

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), timeout=5.0)
            try:
                request = json.loads(line or b"{}")
                command = request.get("command") if isinstance(request, dict) else None
            except ValueError:
                command = None
            if command == "status":
                reply: dict[str, Any] = {"ok": True, "status": self.status_fn()}
            else:
                reply = {"ok": False, "error": f"unknown command; valid: {', '.join(COMMANDS)}"}
            writer.write((json.dumps(reply) + "\n").encode())
            await writer.drain()
        except (TimeoutError, ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        self.net.call(close_stream_server(self._server, self.address))


def control_address(text: str | None, allow_remote: bool = False) -> Address | None:
    """``--control``: an address, ``none`` to disable, or the default Unix socket."""
    if text is not None and text.lower() == "none":
        return None
    return parse_address(text or default_control_path(), "--control", allow_remote)


def query(address: Address, command: str = "status", timeout_s: float = 5.0) -> dict[str, Any]:
    """Send one command to a running daemon; its reply as a dict."""
    family = socket.AF_UNIX if address.scheme == "unix" else socket.AF_INET6 if ":" in address.host else socket.AF_INET
    target: Any = address.path if address.scheme == "unix" else (address.host, address.port)
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect(target)
            sock.sendall((json.dumps({"command": command}) + "\n").encode())
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    except (FileNotFoundError, ConnectionRefusedError):
        raise WakewordError(f"no `wakeword serve` is running at {address} (start one, or pass --control)") from None
    except OSError as e:
        raise WakewordError(f"cannot query {address}: {e.strerror or e}") from None
    try:
        reply = json.loads(data)
    except ValueError:
        raise WakewordError(f"{address} answered something that is not wakeword's control protocol") from None
    if not reply.get("ok"):
        raise WakewordError(f"{address}: {reply.get('error', 'request refused')}")
    return reply["status"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = add_command_parser(
        subparsers,
        "status",
        help="query a running `wakeword serve` for its counters",
        description="Ask a running `wakeword serve` over its control socket for its counters: blocks processed, "
        "overflows, dropped blocks, detections, transcripts, device reconnects, uptime.",
    )
    p.add_argument(
        "--control",
        default=None,
        metavar="unix:PATH|tcp://HOST:PORT",
        help=f"the daemon's control socket (default: {default_control_path()})",
    )
    p.add_argument("--json", action="store_true", help="print the reply as one JSON object")
    return p


def _flatten(prefix: str, value: Any, out: list[tuple[str, Any]]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else key, item, out)
    else:
        out.append((prefix, value))


def run(args: argparse.Namespace) -> int:
    address = control_address(args.control, allow_remote=True)  # a client connects; it listens nowhere
    if address is None:
        raise ConfigError("--control none: there is nothing to query")
    status = query(address)
    if args.json:
        print(json.dumps(status))
    else:
        rows: list[tuple[str, Any]] = []
        _flatten("", status, rows)
        width = max(len(k) for k, _ in rows)
        for key, value in rows:
            print(f"{key:<{width}}  {value}")
    return 0
