"""What a running `tenantctl cluster up` writes for the other commands: cluster.json in its state
directory (its pid, API URL, kubeconfig and, with a node, the node's addresses and containerd socket)."""

from __future__ import annotations

import json
import os
from pathlib import Path

DEFAULT_STATE_DIR = Path(".run/cluster")


def state_file(state_dir: Path) -> Path:
    return state_dir / "cluster.json"


def read_state(state_dir: Path) -> dict | None:
    try:
        return json.loads(state_file(state_dir).read_text())
    except (OSError, ValueError):
        return None


def write_state(state_dir: Path, state: dict) -> None:
    state_file(state_dir).write_text(json.dumps(state, indent=2))


def remove_state(state_dir: Path) -> None:
    state_file(state_dir).unlink(missing_ok=True)


def running_state(state_dir: Path = DEFAULT_STATE_DIR) -> dict | None:
    """What a running `tenantctl cluster up` wrote to cluster.json (kubeconfig, node, containerd_socket, ...)."""
    state = read_state(state_dir.resolve())
    return state if state and pid_alive(state["pid"]) else None


def running_kubeconfig(state_dir: Path = DEFAULT_STATE_DIR) -> Path | None:
    """The admin kubeconfig of a control plane `tenantctl cluster up` is running, if any."""
    state = running_state(state_dir)
    return Path(state["kubeconfig"]) if state else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
