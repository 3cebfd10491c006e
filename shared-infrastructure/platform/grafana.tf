# Grafana with Prometheus as its datasource. Dashboards come from ConfigMaps labelled
# grafana_dashboard=1 in this namespace (the platform's below, one per tenant from the tenant
# module), collected by the k8s-sidecar container into the provisioned dashboards folder.
# grafana.enabled = false leaves Grafana out (the dashboards' ConfigMaps are still written).

locals {
  grafana_name     = "grafana"
  grafana_port     = 3000
  grafana_selector = { "app.kubernetes.io/name" = local.grafana_name }
  grafana_labels   = merge(local.common_labels, local.grafana_selector, { "app.kubernetes.io/component" = "dashboards" })
  dashboards_dir   = "/var/lib/grafana/dashboards"

  grafana_enabled        = nonsensitive(var.grafana.enabled)
  grafana_admin_password = coalesce(var.grafana.admin_password, replace(terraform_data.grafana_admin_password.output, "-", ""))

  platform_dashboards = {
    "platform-overview"  = file("${local.repository_root}/dashboards/generated/platform-overview.json")
    "tenants-comparison" = file("${local.repository_root}/dashboards/generated/tenants-comparison.json")
  }
}

# Generated once (uuid(), kept by ignore_changes) unless grafana.admin_password is set.
resource "terraform_data" "grafana_admin_password" {
  input = uuid()

  lifecycle {
    ignore_changes = [input]
  }
}

resource "kubectl_manifest" "grafana_admin" {
  count = local.grafana_enabled ? 1 : 0

  yaml_body = yamlencode({
    apiVersion = "v1"
    kind       = "Secret"
    metadata   = { name = "${local.grafana_name}-admin", namespace = var.namespace, labels = local.grafana_labels }
    type       = "Opaque"
    data       = { user = base64encode("admin"), password = base64encode(local.grafana_admin_password) }
  })
  sensitive_fields = ["data"]
  depends_on       = [kubectl_manifest.namespace]
}

# The dashboard sidecar watches ConfigMaps in this namespace.
module "grafana_identity" {
  source = "../modules/service-identity"
  count  = local.grafana_enabled ? 1 : 0

  name      = local.grafana_name
  namespace = var.namespace
  labels    = local.grafana_labels
  rules     = [{ apiGroups = [""], resources = ["configmaps"], verbs = ["get", "list", "watch"] }]

  depends_on = [kubectl_manifest.namespace]
}

resource "kubectl_manifest" "grafana_provisioning" {
  count = local.grafana_enabled ? 1 : 0

  yaml_body = yamlencode({
    apiVersion = "v1"
    kind       = "ConfigMap"
    metadata   = { name = "${local.grafana_name}-provisioning", namespace = var.namespace, labels = local.grafana_labels }
    data = {
      "datasources.yaml" = yamlencode({
        apiVersion = 1
        datasources = [{
          name      = "Prometheus"
          uid       = "prometheus"
          type      = "prometheus"
          access    = "proxy"
          url       = "http://${local.prometheus_name}.${var.namespace}.svc.cluster.local:${local.prometheus_port}"
          isDefault = true
        }]
      })
      "dashboards.yaml" = yamlencode({
        apiVersion = 1
        providers = [{
          name                  = "llm-tenants"
          type                  = "file"
          folder                = "LLM tenants"
          allowUiUpdates        = false
          updateIntervalSeconds = 30
          options               = { path = local.dashboards_dir }
        }]
      })
    }
  })
  depends_on = [kubectl_manifest.namespace]
}

resource "kubectl_manifest" "platform_dashboard" {
  for_each = local.platform_dashboards

  yaml_body = yamlencode({
    apiVersion = "v1"
    kind       = "ConfigMap"
    metadata = {
      name      = "grafana-dashboard-${each.key}"
      namespace = var.namespace
      labels    = merge(local.grafana_labels, { "grafana_dashboard" = "1" })
    }
    data = { "${each.key}.json" = each.value }
  })
  depends_on = [kubectl_manifest.namespace]
}

resource "kubectl_manifest" "grafana_deployment" {
  count = local.grafana_enabled ? 1 : 0

  yaml_body = yamlencode({
    apiVersion = "apps/v1"
    kind       = "Deployment"
    metadata   = { name = local.grafana_name, namespace = var.namespace, labels = local.grafana_labels }
    spec = {
      replicas = 1
      selector = { matchLabels = local.grafana_selector }
      template = {
        metadata = { labels = local.grafana_labels }
        spec = {
          serviceAccountName = module.grafana_identity[0].service_account
          securityContext = {
            runAsNonRoot   = true
            runAsUser      = 472
            runAsGroup     = 472
            fsGroup        = 472
            seccompProfile = { type = "RuntimeDefault" }
          }
          containers = [
            {
              name  = "grafana"
              image = var.grafana.image
              ports = [{ name = "http", containerPort = local.grafana_port }]
              env = [
                { name = "GF_SECURITY_ADMIN_USER", valueFrom = { secretKeyRef = { name = "${local.grafana_name}-admin", key = "user" } } },
                { name = "GF_SECURITY_ADMIN_PASSWORD", valueFrom = { secretKeyRef = { name = "${local.grafana_name}-admin", key = "password" } } },
                { name = "GF_PATHS_PROVISIONING", value = "/etc/grafana/provisioning" },
                { name = "GF_ANALYTICS_REPORTING_ENABLED", value = "false" },
              ]
              readinessProbe  = { httpGet = { path = "/api/health", port = "http" }, periodSeconds = 5 }
              livenessProbe   = { httpGet = { path = "/api/health", port = "http" }, periodSeconds = 15 }
              resources       = { requests = { cpu = "100m", memory = "256Mi" }, limits = { cpu = "1", memory = "512Mi" } }
              securityContext = local.restricted_container_security
              volumeMounts = [
                { name = "provisioning", mountPath = "/etc/grafana/provisioning/datasources/datasources.yaml", subPath = "datasources.yaml", readOnly = true },
                { name = "provisioning", mountPath = "/etc/grafana/provisioning/dashboards/dashboards.yaml", subPath = "dashboards.yaml", readOnly = true },
                { name = "dashboards", mountPath = local.dashboards_dir },
                { name = "data", mountPath = "/var/lib/grafana" },
                { name = "tmp", mountPath = "/tmp" },
              ]
            },
            {
              name  = "dashboards-sidecar"
              image = var.grafana.sidecar_image
              env = [
                { name = "LABEL", value = "grafana_dashboard" },
                { name = "LABEL_VALUE", value = "1" },
                { name = "FOLDER", value = local.dashboards_dir },
                { name = "NAMESPACE", value = var.namespace },
                { name = "RESOURCE", value = "configmap" },
              ]
              resources       = { requests = { cpu = "50m", memory = "64Mi" }, limits = { cpu = "200m", memory = "128Mi" } }
              securityContext = local.restricted_container_security
              volumeMounts    = [{ name = "dashboards", mountPath = local.dashboards_dir }]
            },
          ]
          volumes = [
            { name = "provisioning", configMap = { name = "${local.grafana_name}-provisioning" } },
            { name = "dashboards", emptyDir = {} },
            { name = "data", emptyDir = {} },
            { name = "tmp", emptyDir = {} },
          ]
        }
      }
    }
  })
  wait_for_rollout = var.wait_for_rollout
  depends_on       = [kubectl_manifest.grafana_admin, kubectl_manifest.grafana_provisioning]
}

resource "kubectl_manifest" "grafana_service" {
  count = local.grafana_enabled ? 1 : 0

  yaml_body = yamlencode({
    apiVersion = "v1"
    kind       = "Service"
    metadata   = { name = local.grafana_name, namespace = var.namespace, labels = local.grafana_labels }
    spec = {
      selector = local.grafana_selector
      ports    = [{ name = "http", port = local.grafana_port, targetPort = "http" }]
    }
  })
  depends_on = [kubectl_manifest.namespace]
}
