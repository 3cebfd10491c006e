"""The environment is the lock: what ./scripts/setup installed, and what the images install, is exactly what
requirements*.lock records (scripts/lock), so a fresh machine gets what was tested."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
LOCKS = ("requirements.lock", "requirements-runtime.lock", "requirements-model-server.lock")
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def pins(lock: str) -> dict[str, str]:
    return {
        canonicalize_name(match[1]): match[2]
        for match in map(PIN.match, (REPO / lock).read_text().splitlines())
        if match
    }


def hashed_entries(lock: str) -> list[str]:
    """Each entry of a lock, its continuation lines joined."""
    text = (REPO / lock).read_text().replace("\\\n", " ")
    return [line for line in text.splitlines() if PIN.match(line)]


def installed() -> dict[str, str]:
    frozen = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--all", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    versions = {}
    for line in frozen:
        name = re.split(r"==| @ ", line)[0]
        versions[canonicalize_name(name)] = metadata.version(name)  # also for `name @ file://...` lines
    return versions


def test_the_virtualenv_holds_exactly_the_lock():
    locked, present = pins("requirements.lock"), installed()
    assert sorted(locked.keys() - present.keys()) == [], "locked but not installed"
    assert sorted(present.keys() - locked.keys()) == [], "installed but not locked"
    assert {name: (locked[name], present[name]) for name in locked if locked[name] != present[name]} == {}


def test_llama_cpp_is_this_machines_build_of_the_locked_source():
    record = Path(sys.prefix) / "llama-cpp-wheel"
    wheel = Path(record.read_text().strip())
    assert wheel.name.startswith(f"llama_cpp_python-{pins('requirements.lock')['llama-cpp-python']}-")
    assert metadata.version("llama-cpp-python") == pins("requirements.lock")["llama-cpp-python"]


def test_every_entry_of_every_lock_carries_hashes():
    for lock in LOCKS:
        entries = hashed_entries(lock)
        assert entries, lock
        assert [entry.split()[0] for entry in entries if "--hash=sha256:" not in entry] == [], lock


def test_the_image_locks_agree_with_the_environment_lock():
    whole = pins("requirements.lock")
    for lock in LOCKS[1:]:
        assert {name: version for name, version in pins(lock).items() if whole.get(name) != version} == {}, lock


def test_every_requirement_in_pyproject_is_met_by_the_lock():
    """A range edited in pyproject.toml without `scripts/lock` shows here, not on a fresh machine."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    requirements = (
        project["project"]["dependencies"]
        + project["build-system"]["requires"]
        + [r for extra in project["project"]["optional-dependencies"].values() for r in extra]
        + project["dependency-groups"]["setup"]
    )
    locked = pins("requirements.lock")
    unmet = []
    for requirement in map(Requirement, requirements):
        name = canonicalize_name(requirement.name)
        if name == "llm-tenants":  # an extra naming another extra
            continue
        if name not in locked or not requirement.specifier.contains(locked[name], prereleases=True):
            unmet.append(f"{requirement} (locked: {locked.get(name, 'absent')})")
    assert unmet == [], "run scripts/lock"


def test_the_images_install_from_their_locks_only():
    platform = (REPO / "Dockerfile").read_text()
    model_server = (REPO / "tenantctl/images/model-server.Dockerfile").read_text()
    assert "pip install --no-deps --require-hashes -r requirements-runtime.lock" in platform
    assert "pip install --no-deps --require-hashes -r requirements-model-server.lock" in model_server
    for dockerfile in (platform, model_server):
        installs = re.findall(r"pip install [^\n]*", dockerfile)
        assert all("--no-deps" in command for command in installs), installs
