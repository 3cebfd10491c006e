# The shared platform in one namespace (default `monitoring`): the LLM gateway every tenant proxy
# calls, the model catalogue (var.models) with a model server per self-hosted model (vLLM on GPU nodes,
# or the CPU model server), Redis and the usage ledger, Prometheus, Alertmanager, Grafana and
# kube-state-metrics. Apply once per cluster, before any tenant (tenants write their route and dashboard
# here; the catalogue admits the models a route names).
# See gateway.tf, tenant_routes.tf, catalogue.tf, models.tf, redis.tf, ledger.tf, prometheus.tf,
# alertmanager.tf, grafana.tf and kube_state_metrics.tf.

provider "kubectl" {
  config_path      = var.kubeconfig_path
  config_context   = var.kube_context
  load_config_file = true
}

locals {
  common_labels = {
    "app.kubernetes.io/part-of"    = "llm-tenants"
    "app.kubernetes.io/managed-by" = "terraform"
  }
  repository_root = "${path.module}/../.."

  # Pods that Prometheus scrapes carry these annotations (see prometheus.tf).
  scrape_annotations = {
    "prometheus.io/scrape" = "true"
    "prometheus.io/path"   = "/metrics"
  }
  restricted_container_security = {
    allowPrivilegeEscalation = false
    readOnlyRootFilesystem   = true
    capabilities             = { drop = ["ALL"] }
  }
}

resource "kubectl_manifest" "namespace" {
  yaml_body = yamlencode({
    apiVersion = "v1"
    kind       = "Namespace"
    metadata = {
      name   = var.namespace
      labels = merge(local.common_labels, { "app.kubernetes.io/name" = var.namespace })
    }
  })
  wait = true
}
