"""Where things live: the repository, and the cache outside it that survives checkouts."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_root() -> Path:
    """$LLM_TENANTS_CACHE, by default ~/.cache/llm-tenants: built binaries, images, models, Docker's data."""
    return Path(os.environ.get("LLM_TENANTS_CACHE") or Path.home() / ".cache" / "llm-tenants")
