"""tenantctl: the platform's command line and what it drives, in rooms that import downwards only.

commands/   the argparse CLI (`tenantctl ...`): parses, calls into the rooms below, prints
local/      local mode: the platform as processes on this machine (`tenantctl up`)
cluster/    the local Kubernetes cluster: control plane, node, add-ons, host state (`tenantctl cluster`)
images/     the container images, built here without a registry (`tenantctl images`)
terraform/  Terraform: the runner, the provider toolchain, the roots and their deployment
processes.py, paths.py, waiting.py: what several rooms share (child processes, where things live, polling)
"""
