terraform {
  required_version = ">= 1.9"

  required_providers {
    kubectl = {
      source  = "gavinbunney/kubectl"
      version = "~> 1.19"
    }
  }

  # One state per tenant, next to its spec (tenants/<name>/terraform.tfstate). For a team,
  # switch to a shared backend, e.g. `backend "kubernetes" { secret_suffix = "<name>" }`.
  backend "local" {}
}
