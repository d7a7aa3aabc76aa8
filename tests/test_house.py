"""The house rules, checked in CI: lint, format, import layers, types, and function size.

Each runs the maintained tool on the package (ruff, import-linter, mypy; configured in ruff.toml and
pyproject.toml), so `.venv/bin/python -m pytest -q` fails when a change breaks one of them.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MAX_LINES = 60
MAX_PARAMS = 8


def tool(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / argv[0]), *argv[1:]], cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize(
    "argv",
    [
        ("ruff", "check", "--no-cache", "wakeword", "tests", "scripts"),
        ("ruff", "format", "--no-cache", "--check", "wakeword", "tests", "scripts"),
        ("lint-imports", "--no-cache"),
        ("mypy", "--cache-dir", "{tmp}"),
    ],
    ids=["ruff-check", "ruff-format", "import-contracts", "mypy"],
)
def test_tool_passes(argv, tmp_path):
    """Each tool's cache goes to the test's temp dir (or none is written), never into the checkout."""
    proc = tool(*(a.format(tmp=tmp_path) for a in argv))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def long_functions() -> list[str]:
    """Functions over MAX_LINES lines or MAX_PARAMS parameters with no one-line reason on or above their def."""
    found = []
    for path in sorted((ROOT / "wakeword").rglob("*.py")):
        lines = path.read_text().split("\n")
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            args = node.args
            params = len(args.posonlyargs) + len(args.args) + len(args.kwonlyargs)
            params -= bool(args.args and args.args[0].arg in ("self", "cls"))
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length <= MAX_LINES and params <= MAX_PARAMS:
                continue
            first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
            above = lines[first - 2].strip() if first >= 2 else ""
            if not (above.startswith("# long:") or "# long:" in lines[node.lineno - 1]):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines, {params} params)")
    return found


def test_long_functions_say_why():
    """A function over ~60 lines or ~8 parameters carries a `# long: <reason>` line right above it."""
    assert long_functions() == []
