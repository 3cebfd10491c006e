# One tenant: tenant.json is its spec, the shared module does the rest. To onboard one, copy this
# directory to tenants/<name>/, edit tenant.json, then `terraform init && terraform apply` in it.
terraform {
  required_providers {
    kubectl = { source = "gavinbunney/kubectl", version = "~> 1.19" }
  }
  backend "local" {} # tenants/<name>/terraform.tfstate; for a team, e.g. backend "kubernetes"
}

variable "kubeconfig_path" { default = null } # null: KUBE_CONFIG_PATH or ~/.kube/config
variable "kube_context" { default = null }    # null: the current context
variable "proxy_image" { default = null }     # null: the module's release image
variable "wait_for_rollout" { default = true }

provider "kubectl" {
  config_path      = var.kubeconfig_path
  config_context   = var.kube_context
  load_config_file = true
}

module "tenant" {
  source           = "../../shared-infrastructure/modules/tenant"
  spec             = jsondecode(file("${path.module}/tenant.json"))
  proxy_image      = var.proxy_image
  wait_for_rollout = var.wait_for_rollout
}

output "tenant" {
  value = module.tenant
}
