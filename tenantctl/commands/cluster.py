"""`tenantctl cluster up|down|status`: the local Kubernetes cluster (tenantctl/cluster/)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tenantctl.cluster.service import serve, start_detached, stop_running
from tenantctl.cluster.state import DEFAULT_STATE_DIR, pid_alive, read_state


def command_up(args: argparse.Namespace) -> int:
    state_dir = args.state_dir.resolve()
    state = read_state(state_dir)
    if state and pid_alive(state["pid"]):
        print(f"already running (pid {state['pid']}); kubeconfig: {state['kubeconfig']}")
        return 0
    state_dir.mkdir(parents=True, exist_ok=True)
    with_node = not args.control_plane_only
    if not args.detach:
        return serve(state_dir, with_node, args.lock_timeout)
    return start_detached(state_dir, args.timeout + args.lock_timeout, with_node, args.lock_timeout)


def command_down(args: argparse.Namespace) -> int:
    return stop_running(args.state_dir.resolve())


def command_status(args: argparse.Namespace) -> int:
    state = read_state(args.state_dir.resolve())
    if not state or not pid_alive(state["pid"]):
        print("no control plane running")
        return 1
    print(json.dumps(state, indent=2))
    return 0


def register(subparsers) -> None:
    """Add `cluster up|down|status` to a CLI's argparse subparsers."""
    cluster = subparsers.add_parser("cluster", help="run a local Kubernetes cluster: control plane and one node")
    commands = cluster.add_subparsers(dest="cluster_command", required=True)
    for name, handler, help_text in (
        ("up", command_up, "start it (foreground until Ctrl-C, or --detach) and print the kubeconfig path"),
        ("down", command_down, "stop it and undo every change the node made to this machine"),
        ("status", command_status, "show the running cluster's kubeconfig, URL and node"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument(
            "--state-dir",
            type=Path,
            default=DEFAULT_STATE_DIR,
            help=f"where certificates, etcd data, logs and state live (default {DEFAULT_STATE_DIR})",
        )
        command.set_defaults(handler=handler)
        if name == "up":
            command.add_argument("--detach", action="store_true", help="run in the background and return when ready")
            command.add_argument("--timeout", type=float, default=300, help="seconds to wait for readiness (--detach)")
            command.add_argument(
                "--control-plane-only",
                action="store_true",
                help="no node: etcd, apiserver and controllers only (Pods stay Pending; no root needed)",
            )
            command.add_argument(
                "--lock-timeout",
                type=float,
                default=0,
                help="seconds to wait while another local node runs on this machine (default: fail)",
            )
