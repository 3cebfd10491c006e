"""Run an earlier revision's services beside this tree's, in the same benchmark run.

`--baseline <git rev>` in a benchmark extracts that revision (`git archive`) into a temporary
directory and starts its gateway and proxy from there, with this tree's virtualenv, so both
versions are measured side by side on the same machine load: the difference is what the
changes since that revision cost.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

from tenantctl.processes import ManagedProcess

REPO = Path(__file__).resolve().parent.parent


def extract(rev: str, target: Path) -> Path:
    """The tree of `rev` in `target` (created); returns it."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", rev], capture_output=True, check=True
    ).stdout
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


def from_tree(process: ManagedProcess, tree: Path) -> ManagedProcess:
    """Make `process` (a launcher's gunicorn service) import its code from `tree` instead of this one."""
    process.cwd = tree  # `python -m gunicorn` puts the working directory first on sys.path
    process.env = {**process.env, "PYTHONPATH": str(tree)}
    process.name = f"{process.name}@baseline"
    return process


def short(rev: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", rev], capture_output=True, text=True, check=True
    ).stdout.strip()
