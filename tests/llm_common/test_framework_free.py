"""llm_common is the services' framework-free common ground: importing any of its modules loads no web
framework, no OpenAI SDK and none of the packages above it; and the gateway's app factory loads no Flask.
Each import runs in a fresh interpreter, so nothing another test imported can hide what a module loads."""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import llm_common

REPO_ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("flask", "werkzeug", "starlette", "openai", "app", "llm_gateway", "tenantctl", "alert_config_sync")
MODULES = sorted(f"llm_common.{module.name}" for module in pkgutil.iter_modules(llm_common.__path__))


def loaded_by(imports: list[str], tmp_path: Path) -> dict[str, list[str]]:
    """For each import statement, run in turn in a fresh interpreter, the forbidden packages it loaded first."""
    script = f"""
import json, sys
loaded = {{}}
for statement in {imports!r}:
    before = set(sys.modules)
    exec(statement)
    loaded[statement] = [name for name in {FORBIDDEN!r} if name in sys.modules and name not in before]
print(json.dumps(loaded))
"""
    # llm_common.gunicorn_conf makes a metrics directory unless one is set
    environ = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=environ, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_llm_common_modules_load_no_framework_sdk_or_service(tmp_path):
    assert "llm_common.errors" in MODULES and "llm_common.tracing" in MODULES
    loaded = loaded_by([f"import {module}" for module in MODULES], tmp_path)
    assert {statement: names for statement, names in loaded.items() if names} == {}


def test_the_gateways_app_factory_loads_no_flask(tmp_path):
    (loaded,) = loaded_by(["from llm_gateway import create_app"], tmp_path).values()
    assert "starlette" in loaded  # (the check sees what is loaded)
    assert not {"flask", "werkzeug", "app"} & set(loaded)
