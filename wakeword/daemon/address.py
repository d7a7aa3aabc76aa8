"""Listening addresses: ``unix:PATH`` (the default scheme) or ``tcp://HOST:PORT``.

A TCP host defaults to 127.0.0.1; a host that is not a loopback address is
refused unless the user asked for it (``--allow-remote``). A Unix socket path
never replaces a file that is not a socket, nor a socket a live server
answers on.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import stat
from dataclasses import dataclass
from pathlib import Path

from wakeword.errors import ConfigError

__all__ = ["Address", "default_control_path", "parse_address", "prepare_unix_path"]

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


@dataclass(frozen=True)
class Address:
    """Where a server listens: a Unix socket ``path``, or TCP ``host``:``port``."""

    scheme: str
    path: str = ""
    host: str = ""
    port: int = 0

    def __str__(self) -> str:
        if self.scheme == "unix":
            return f"unix:{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp://{host}:{self.port}"

    @property
    def is_loopback(self) -> bool:
        if self.scheme == "unix":
            return True
        if self.host.lower() in LOOPBACK_NAMES:
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def parse_address(text: str, option: str, allow_remote: bool = False) -> Address:
    """Parse ``unix:PATH``, ``unix://PATH``, a bare path, or ``tcp://[HOST]:PORT``."""
    text = text.strip()
    if text.startswith("tcp://"):
        rest = text[len("tcp://") :].rstrip("/")
        host, sep, port_text = rest.rpartition(":")
        if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
            raise ConfigError(f"{option} {text!r}: expected tcp://HOST:PORT with a port number")
        host = host.strip("[]") or "127.0.0.1"
        address = Address("tcp", host=host, port=int(port_text))
        if not allow_remote and not address.is_loopback:
            raise ConfigError(
                f"{option} {text!r} would listen on a non-loopback address, reachable from other machines; "
                "pass --allow-remote if that is what you want"
            )
        return address
    if "://" in text and not text.startswith("unix://"):
        raise ConfigError(f"{option} {text!r}: expected unix:PATH or tcp://HOST:PORT")
    path = text.removeprefix("unix://").removeprefix("unix:")
    if not path:
        raise ConfigError(f"{option} {text!r}: empty socket path")
    return Address("unix", path=str(Path(path).expanduser()))


def default_control_path() -> str:
    """``$XDG_RUNTIME_DIR/wakeword/control.sock``, else a private folder under /tmp."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) if runtime else Path("/tmp") / f"wakeword-{os.getuid()}"
    return str(base / ("wakeword" if runtime else "") / "control.sock")


def prepare_unix_path(path: str, option: str) -> None:
    """Make the socket's folder (0700 if new); remove a stale socket; refuse anything else."""
    p = Path(path)
    try:
        st = p.lstat()
    except FileNotFoundError:
        try:
            p.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"{option}: cannot create {p.parent} ({e.strerror or e})") from None
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise ConfigError(f"{option}: {path} exists and is not a socket; refusing to replace it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(0.5)
        probe.connect(path)
    except OSError:
        p.unlink(missing_ok=True)  # stale: its server is gone
        return
    finally:
        probe.close()
    raise ConfigError(f"{option}: a server is already listening on {path} (another `wakeword serve`?)")
