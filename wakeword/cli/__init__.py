"""The ``wakeword`` command line: one module per command family, :func:`main` dispatches."""

from wakeword.cli.app import EXTERNAL_COMMANDS, main

__all__ = ["EXTERNAL_COMMANDS", "main"]
