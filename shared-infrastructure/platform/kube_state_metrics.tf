# kube-state-metrics: ResourceQuota usage per tenant namespace (kube_resourcequota) and object
# states for the dashboards. Read-only, cluster-wide, limited to the resources we chart.

locals {
  ksm_name      = "kube-state-metrics"
  ksm_port      = 8080
  ksm_selector  = { "app.kubernetes.io/name" = local.ksm_name }
  ksm_labels    = merge(local.common_labels, local.ksm_selector, { "app.kubernetes.io/component" = "metrics" })
  ksm_resources = ["resourcequotas", "limitranges", "namespaces", "pods", "deployments", "persistentvolumeclaims"]
}

module "ksm_identity" {
  source = "../modules/service-identity"
  count  = var.kube_state_metrics.enabled ? 1 : 0

  name         = local.ksm_name
  namespace    = var.namespace
  labels       = local.ksm_labels
  cluster_wide = true
  rules = [
    { apiGroups = [""], resources = ["resourcequotas", "limitranges", "namespaces", "pods", "persistentvolumeclaims"], verbs = ["list", "watch"] },
    { apiGroups = ["apps"], resources = ["deployments"], verbs = ["list", "watch"] },
  ]

  depends_on = [kubectl_manifest.namespace]
}

resource "kubectl_manifest" "ksm_deployment" {
  count = var.kube_state_metrics.enabled ? 1 : 0

  yaml_body = yamlencode({
    apiVersion = "apps/v1"
    kind       = "Deployment"
    metadata   = { name = local.ksm_name, namespace = var.namespace, labels = local.ksm_labels }
    spec = {
      replicas = 1
      selector = { matchLabels = local.ksm_selector }
      template = {
        metadata = {
          labels      = local.ksm_labels
          annotations = merge(local.scrape_annotations, { "prometheus.io/port" = tostring(local.ksm_port) })
        }
        spec = {
          serviceAccountName = module.ksm_identity[0].service_account
          securityContext = {
            runAsNonRoot   = true
            runAsUser      = 65534
            runAsGroup     = 65534
            seccompProfile = { type = "RuntimeDefault" }
          }
          containers = [{
            name            = "kube-state-metrics"
            image           = var.kube_state_metrics.image
            args            = ["--resources=${join(",", local.ksm_resources)}", "--port=${local.ksm_port}"]
            ports           = [{ name = "http", containerPort = local.ksm_port }]
            readinessProbe  = { httpGet = { path = "/readyz", port = 8081 }, periodSeconds = 5 }
            livenessProbe   = { httpGet = { path = "/livez", port = "http" }, periodSeconds = 15 }
            resources       = { requests = { cpu = "50m", memory = "64Mi" }, limits = { cpu = "500m", memory = "256Mi" } }
            securityContext = local.restricted_container_security
          }]
        }
      }
    }
  })
  wait_for_rollout = var.wait_for_rollout
}
