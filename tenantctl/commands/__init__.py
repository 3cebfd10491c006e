"""The `tenantctl` command line: argparse parsing, calls into the rooms (local/, cluster/, images/,
terraform/), and what is printed. main.py builds the parser; each module registers its commands.

    tenantctl up                    start model server, gateway, one proxy per tenant, Prometheus, Alertmanager
    tenantctl ask <tenant> "..."    ask a running tenant proxy a question
    tenantctl ingest <tenant> FILE… add documents to a tenant's knowledge base
    tenantctl documents|forget ...  list a tenant's documents, delete one
    tenantctl validate              check every tenant spec
    tenantctl alerts config         the Alertmanager config the specs make (alert routing), amtool-checked
    tenantctl dashboards [--check]  regenerate the Grafana dashboards (dashboards/generated/)
    tenantctl report <tenant>       a tenant's dashboard panels as a PNG, from Prometheus
    tenantctl cluster up|down|status  a local Kubernetes cluster: control plane and one node (Pods run)
    tenantctl images build|list     the container images the cluster runs, built locally
    tenantctl onboard <name> ...    create tenants/<name>/ from tenant-template/
    tenantctl platform apply|destroy  the shared platform on a cluster (Terraform)
    tenantctl apply|destroy <name>  a tenant on a cluster (Terraform)
    tenantctl status <name>         a tenant's quota usage and objects on the cluster
    tenantctl usage <name>          a tenant's usage and remaining budget (the usage ledger)

`scripts/build-toolchain` is build_toolchain.py.
"""
