# Alertmanager: where Prometheus's alerts go, routed to each tenant's receivers (its spec's `alerts`)
# and the platform's (var.alertmanager). Its config is rendered from every tenant's TenantRoute by a
# sidecar (alert_config_sync/, the platform image) with the renderer local mode uses
# (alert_config_sync/routing.py): a tenant onboarded later gets its route within seconds, without a
# platform apply. The init container renders the first config before Alertmanager starts.
#
# Only this namespace's Pods (Prometheus, Grafana, operators' tools) may reach Alertmanager's API:
# from a tenant namespace nobody can silence, or read, another tenant's alerts.

locals {
  alertmanager_name     = "alertmanager"
  alertmanager_port     = 9093
  alertmanager_selector = { "app.kubernetes.io/name" = local.alertmanager_name }
  alertmanager_labels   = merge(local.common_labels, local.alertmanager_selector, { "app.kubernetes.io/component" = "alerting" })
  alertmanager_url      = "${local.alertmanager_name}.${var.namespace}.svc:${local.alertmanager_port}"

  alertmanager_config_dir  = "/etc/alertmanager"                  # the rendered config and tokens (memory)
  alertmanager_secrets_dir = "/etc/alertmanager-platform-secrets" # the platform's webhook token, SMTP password
  alert_webhook_token      = nonsensitive(var.alert_receiver_secrets.webhook_token != "")
  alert_smtp_password      = nonsensitive(var.alert_receiver_secrets.smtp_password != "")

  # The platform's receivers and the routing's timings: alert_config_sync.routing.PlatformAlerts.
  platform_alerts = merge(
    {
      webhook_urls          = var.alertmanager.webhook_urls
      email                 = var.alertmanager.email
      receive_tenant_alerts = var.alertmanager.receive_tenant_alerts
      group_wait            = var.alertmanager.group_wait
      group_interval        = var.alertmanager.group_interval
      repeat_interval       = var.alertmanager.repeat_interval
    },
    local.alert_webhook_token ? { webhook_token_file = "${local.alertmanager_secrets_dir}/webhook_token" } : {},
    var.alertmanager.smtp == null ? {} : {
      smtp = { for field, value in {
        smarthost          = var.alertmanager.smtp.smarthost
        sender             = var.alertmanager.smtp.from
        auth_username      = var.alertmanager.smtp.auth_username
        auth_password_file = local.alert_smtp_password ? "${local.alertmanager_secrets_dir}/smtp_password" : null
        require_tls        = var.alertmanager.smtp.require_tls
      } : field => value if value != null }
    },
  )

  alert_config_sync_args = [
    "--namespace", var.namespace,
    "--platform", "/etc/alert-routing/platform.json",
    "--output", "${local.alertmanager_config_dir}/alertmanager.yml",
    "--tokens-dir", "${local.alertmanager_config_dir}/tokens",
  ]
  alert_config_sync_mounts = [
    { name = "config", mountPath = local.alertmanager_config_dir },
    { name = "routing", mountPath = "/etc/alert-routing", readOnly = true },
  ]
  alert_config_sync_container = {
    image           = var.platform_image
    securityContext = local.restricted_container_security
    resources = {
      requests = { cpu = "10m", memory = "64Mi" }
      limits   = { cpu = "200m", memory = "192Mi" }
    }
    volumeMounts = local.alert_config_sync_mounts
  }
}

# Reads the TenantRoutes and the ModelCatalogue here (catalogue.tf); each tenant that names a webhook token
# Secret grants `get` on that one Secret in its own namespace (shared-infrastructure/modules/tenant). No other
# Secret, anywhere.
module "alertmanager_identity" {
  source = "../modules/service-identity"

  name      = local.alertmanager_name
  namespace = var.namespace
  labels    = local.alertmanager_labels
  rules = [
    { apiGroups = ["llm-tenants.io"], resources = ["tenantroutes"], verbs = ["get", "list", "watch"] },
    { apiGroups = ["llm-tenants.io"], resources = ["modelcatalogues"], verbs = ["get", "list", "watch"] },
  ]

  depends_on = [kubectl_manifest.namespace]
}

resource "kubectl_manifest" "alertmanager_routing" {
  yaml_body = yamlencode({
    apiVersion = "v1"
    kind       = "ConfigMap"
    metadata   = { name = "${local.alertmanager_name}-routing", namespace = var.namespace, labels = local.alertmanager_labels }
    data       = { "platform.json" = jsonencode(local.platform_alerts) }
  })
  depends_on = [kubectl_manifest.namespace]
}

resource "kubectl_manifest" "alertmanager_secrets" {
  yaml_body = yamlencode({
    apiVersion = "v1"
    kind       = "Secret"
    metadata   = { name = "${local.alertmanager_name}-platform-secrets", namespace = var.namespace, labels = local.alertmanager_labels }
    type       = "Opaque"
    data = merge(
      local.alert_webhook_token ? { webhook_token = base64encode(var.alert_receiver_secrets.webhook_token) } : {},
      local.alert_smtp_password ? { smtp_password = base64encode(var.alert_receiver_secrets.smtp_password) } : {},
    )
  })
  sensitive_fields = ["data"]
  depends_on       = [kubectl_manifest.namespace]
}

resource "kubectl_manifest" "alertmanager_data" {
  yaml_body = yamlencode({
    apiVersion = "v1"
    kind       = "PersistentVolumeClaim"
    metadata   = { name = "${local.alertmanager_name}-data", namespace = var.namespace, labels = local.alertmanager_labels }
    spec = {
      accessModes = ["ReadWriteOnce"]
      resources   = { requests = { storage = var.alertmanager.storage } }
    }
  })
  depends_on = [kubectl_manifest.namespace]
}

resource "kubectl_manifest" "alertmanager_deployment" {
  yaml_body = yamlencode({
    apiVersion = "apps/v1"
    kind       = "Deployment"
    metadata   = { name = local.alertmanager_name, namespace = var.namespace, labels = local.alertmanager_labels }
    spec = {
      replicas = 1
      strategy = { type = "Recreate" } # one writer of the silences and notification log
      selector = { matchLabels = local.alertmanager_selector }
      template = {
        metadata = {
          labels = local.alertmanager_labels
          annotations = merge(local.scrape_annotations, {
            "prometheus.io/port" = tostring(local.alertmanager_port)
            # The platform's receivers are read at start; tenants' routes are followed by the sidecar.
            "llm-tenants.io/config-sha256" = sha256(jsonencode(local.platform_alerts))
          })
        }
        spec = {
          serviceAccountName = module.alertmanager_identity.service_account
          securityContext = {
            runAsNonRoot   = true
            runAsUser      = 65534 # Alertmanager's user; the sidecar runs as it too, to share the token files
            runAsGroup     = 65534
            fsGroup        = 65534
            seccompProfile = { type = "RuntimeDefault" }
          }
          initContainers = [merge(local.alert_config_sync_container, {
            name    = "render-config"
            command = concat(["python", "-m", "alert_config_sync", "--once"], local.alert_config_sync_args)
          })]
          containers = [
            {
              name  = "alertmanager"
              image = var.alertmanager.image
              args = [
                "--config.file=${local.alertmanager_config_dir}/alertmanager.yml",
                "--storage.path=/alertmanager",
                "--web.listen-address=:${local.alertmanager_port}",
                "--cluster.listen-address=", # one replica: no gossip
              ]
              ports          = [{ name = "http", containerPort = local.alertmanager_port }]
              readinessProbe = { httpGet = { path = "/-/ready", port = "http" }, periodSeconds = 5 }
              livenessProbe  = { httpGet = { path = "/-/healthy", port = "http" }, periodSeconds = 15 }
              resources = {
                requests = { cpu = var.alertmanager.cpu_request, memory = var.alertmanager.memory_request }
                limits   = { cpu = "500m", memory = "256Mi" }
              }
              securityContext = local.restricted_container_security
              volumeMounts = [
                { name = "config", mountPath = local.alertmanager_config_dir, readOnly = true },
                { name = "secrets", mountPath = local.alertmanager_secrets_dir, readOnly = true },
                { name = "data", mountPath = "/alertmanager" },
              ]
            },
            merge(local.alert_config_sync_container, {
              name = "config-sync"
              command = concat(["python", "-m", "alert_config_sync"], local.alert_config_sync_args,
              ["--reload-url", "http://127.0.0.1:${local.alertmanager_port}/-/reload"])
            }),
          ]
          volumes = [
            { name = "config", emptyDir = { medium = "Memory", sizeLimit = "16Mi" } },
            { name = "routing", configMap = { name = "${local.alertmanager_name}-routing" } },
            { name = "secrets", secret = { secretName = "${local.alertmanager_name}-platform-secrets", defaultMode = 288 } }, # 0440
            { name = "data", persistentVolumeClaim = { claimName = "${local.alertmanager_name}-data" } },
          ]
        }
      }
    }
  })
  wait_for_rollout = var.wait_for_rollout
  depends_on = [
    kubectl_manifest.alertmanager_routing, kubectl_manifest.alertmanager_secrets, kubectl_manifest.alertmanager_data,
    kubectl_manifest.tenant_route_crd, kubectl_manifest.model_catalogue,
  ]
}

resource "kubectl_manifest" "alertmanager_service" {
  yaml_body = yamlencode({
    apiVersion = "v1"
    kind       = "Service"
    metadata   = { name = local.alertmanager_name, namespace = var.namespace, labels = local.alertmanager_labels }
    spec = {
      selector = local.alertmanager_selector
      ports    = [{ name = "http", port = local.alertmanager_port, targetPort = "http" }]
    }
  })
  depends_on = [kubectl_manifest.namespace]
}

resource "kubectl_manifest" "alertmanager_network_policy" {
  yaml_body = yamlencode({
    apiVersion = "networking.k8s.io/v1"
    kind       = "NetworkPolicy"
    metadata   = { name = "${local.alertmanager_name}-ingress", namespace = var.namespace, labels = local.alertmanager_labels }
    spec = {
      podSelector = { matchLabels = local.alertmanager_selector }
      policyTypes = ["Ingress"]
      ingress = [{
        from  = [{ podSelector = {} }]
        ports = [{ protocol = "TCP", port = local.alertmanager_port }]
      }]
    }
  })
  depends_on = [kubectl_manifest.namespace]
}
