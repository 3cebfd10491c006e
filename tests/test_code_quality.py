"""The tree keeps its style and its layers: ruff (lint and format) and the import contracts of
pyproject.toml's [tool.importlinter] (the spec at the bottom, llm_common above it, the services, tenantctl
on top; llm_common free of web frameworks)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "command",
    [["ruff", "check", "."], ["ruff", "format", "--check", "."], ["lint-imports"]],
    ids=["ruff check", "ruff format", "import contracts"],
)
def test_the_tree_is_clean(command):
    result = subprocess.run(
        [str(BIN / command[0]), *command[1:]], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
