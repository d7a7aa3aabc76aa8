"""``wakeword install-service --user``: write the systemd user unit that runs ``wakeword serve``.

The unit template ships in the package (``wakeword/daemon/wakeword.service``).
``ExecStart`` runs this interpreter (so a virtualenv keeps working) with
``-m wakeword serve`` and the options given after ``--``. An existing unit is
replaced only with ``--force``; ``--print`` shows the unit without writing it.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from wakeword.config import add_command_parser
from wakeword.errors import ConfigError

__all__ = ["add_parser", "render_unit", "run", "unit_path"]

_SAFE = re.compile(r"^[A-Za-z0-9_@%+=:,./-]+$")


def _systemd_quote(arg: str) -> str:
    """One ExecStart argument: % and $ are specifier/variable characters to systemd, so doubled."""
    arg = arg.replace("%", "%%").replace("$", "$$")
    if arg and _SAFE.match(arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_unit(serve_args: list[str], name: str = "wakeword") -> str:
    template = resources.files("wakeword.daemon").joinpath("wakeword.service").read_text()
    argv = [sys.executable, "-m", "wakeword", "serve", *serve_args]
    return template.format(exec_start=" ".join(_systemd_quote(a) for a in argv), name=name)


def unit_path(name: str = "wakeword") -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "systemd" / "user" / f"{name}.service"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = add_command_parser(
        subparsers,
        "install-service",
        help="write a systemd unit for `wakeword serve`",
        description="Write a systemd user unit (~/.config/systemd/user/NAME.service) that runs "
        "`wakeword serve` with the options given after --, e.g. "
        "`wakeword install-service --user -- --config ~/.config/wakeword.toml`.",
        verbose_help=argparse.SUPPRESS,
    )
    p.add_argument("--user", action="store_true", help="a user unit (the only kind supported)")
    p.add_argument("--name", default="wakeword", help="unit name (wakeword)")
    p.add_argument("--force", action="store_true", help="replace an existing unit file")
    p.add_argument("--print", dest="print_only", action="store_true", help="print the unit instead of writing it")
    p.add_argument(
        "serve_args", nargs=argparse.REMAINDER, metavar="-- SERVE-OPTIONS", help="options for `wakeword serve`"
    )
    return p


def run(args: argparse.Namespace) -> int:
    if not args.user:
        raise ConfigError("only user units are supported: pass --user (system units need root and their own user)")
    if not re.fullmatch(r"[A-Za-z0-9_.@-]+", args.name):
        raise ConfigError(f"--name {args.name!r}: use letters, digits and _.@- only")
    serve_args = list(args.serve_args)
    if serve_args[:1] == ["--"]:
        serve_args = serve_args[1:]
    unit = render_unit(serve_args, args.name)
    if args.print_only:
        sys.stdout.write(unit)
        return 0
    path = unit_path(args.name)
    if path.exists() and not args.force:
        raise ConfigError(f"{path}: already exists; pass --force to replace it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(unit)
    except OSError as e:
        raise ConfigError(f"{path}: cannot write the unit ({e.strerror or e})") from None
    print(f"wrote {path}")
    print(
        f"start it now and at every login:  systemctl --user daemon-reload && systemctl --user enable --now {args.name}"
    )
    print("start it at boot without logging in:  loginctl enable-linger $USER")
    return 0
