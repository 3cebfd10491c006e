# Prometheus: discovers every annotated Pod in every namespace (tenant proxies, the gateway, the
# model servers, kube-state-metrics) and loads the platform's alert rules
# (dashboards/alerts/), whose alerts it sends to Alertmanager (alertmanager.tf).
#
# Who a series belongs to is decided here, not by the Pod: outside the platform's namespace the
# `tenant` label is the Pod's namespace, whatever label the Pod carries or its metrics publish (a
# published `tenant` is dropped), so no Pod can report series in another tenant's name. In the
# platform's namespace the gateway's own `tenant` label is kept: it is the authenticated owner of
# each request's key.

locals {
  prometheus_name     = "prometheus"
  prometheus_port     = 9090
  prometheus_selector = { "app.kubernetes.io/name" = local.prometheus_name }
  prometheus_labels   = merge(local.common_labels, local.prometheus_selector, { "app.kubernetes.io/component" = "metrics" })

  # Pods that opt in with prometheus.io/* annotations, scraped on the port and path they name.
  annotated_pods = [
    { source_labels = ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"], action = "keep", regex = "true" },
    { source_labels = ["__meta_kubernetes_pod_phase"], action = "drop", regex = "Succeeded|Failed" },
    { source_labels = ["__meta_kubernetes_pod_annotation_prometheus_io_path"], target_label = "__metrics_path__", regex = "(.+)" },
    {
      source_labels = ["__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port"]
      regex         = "([^:]+)(?::\\d+)?;(\\d+)"
      replacement   = "$1:$2"
      target_label  = "__address__"
    },
  ]

  pod_labels = [
    { source_labels = ["__meta_kubernetes_namespace"], target_label = "namespace" },
    { source_labels = ["__meta_kubernetes_pod_name"], target_label = "pod" },
    { source_labels = ["__meta_kubernetes_pod_label_app_kubernetes_io_name"], target_label = "app" },
  ]

  prometheus_config = {
    global = {
      scrape_interval     = var.prometheus.scrape_interval
      evaluation_interval = var.prometheus.scrape_interval
    }
    rule_files = ["/etc/prometheus/rules/*.yml"]
    # Firing and resolved alerts go to Alertmanager (alertmanager.tf), which routes them per tenant.
    alerting = { alertmanagers = [{ static_configs = [{ targets = [local.alertmanager_url] }] }] }
    scrape_configs = concat([
      {
        job_name              = "platform-pods"
        kubernetes_sd_configs = [{ role = "pod", namespaces = { names = [var.namespace] } }]
        relabel_configs = concat(local.annotated_pods, [
          # kube-state-metrics has its own job: its series carry the namespace they describe.
          { source_labels = ["__meta_kubernetes_pod_label_app_kubernetes_io_name"], action = "drop", regex = local.ksm_name },
        ], local.pod_labels)
      },
      {
        job_name              = "tenant-pods"
        kubernetes_sd_configs = [{ role = "pod" }]
        relabel_configs = concat(local.annotated_pods, [
          { source_labels = ["__meta_kubernetes_namespace"], action = "drop", regex = var.namespace },
          { source_labels = ["__meta_kubernetes_namespace"], target_label = "tenant" },
        ], local.pod_labels)
        # The target's `tenant` wins over a scraped one (renamed exported_tenant), which is then dropped.
        metric_relabel_configs = [{ action = "labeldrop", regex = "exported_tenant" }]
      },
      ], var.kube_state_metrics.enabled ? [{
        job_name              = local.ksm_name
        honor_labels          = true # keep `namespace` = the tenant namespace a series describes
        kubernetes_sd_configs = [{ role = "pod", namespaces = { names = [var.namespace] } }]
        relabel_configs = concat(local.annotated_pods, [
          { source_labels = ["__meta_kubernetes_pod_label_app_kubernetes_io_name"], action = "keep", regex = local.ksm_name },
        ])
    }] : [])
  }
}

# Service discovery reads Pods (and Services/Endpoints) in every namespace.
module "prometheus_identity" {
  source = "../modules/service-identity"

  name         = local.prometheus_name
  namespace    = var.namespace
  labels       = local.prometheus_labels
  cluster_wide = true
  rules = [
    { apiGroups = [""], resources = ["pods", "services", "endpoints"], verbs = ["get", "list", "watch"] },
    { apiGroups = ["discovery.k8s.io"], resources = ["endpointslices"], verbs = ["get", "list", "watch"] },
  ]

  depends_on = [kubectl_manifest.namespace]
}

resource "kubectl_manifest" "prometheus_config" {
  yaml_body = yamlencode({
    apiVersion = "v1"
    kind       = "ConfigMap"
    metadata   = { name = "${local.prometheus_name}-config", namespace = var.namespace, labels = local.prometheus_labels }
    data = {
      "prometheus.yml" = yamlencode(local.prometheus_config)
    }
  })
  depends_on = [kubectl_manifest.namespace]
}

resource "kubectl_manifest" "prometheus_rules" {
  yaml_body = yamlencode({
    apiVersion = "v1"
    kind       = "ConfigMap"
    metadata   = { name = "${local.prometheus_name}-rules", namespace = var.namespace, labels = local.prometheus_labels }
    data       = { "llm-tenants.yml" = file("${local.repository_root}/dashboards/alerts/rules.yml") }
  })
  depends_on = [kubectl_manifest.namespace]
}

resource "kubectl_manifest" "prometheus_data" {
  yaml_body = yamlencode({
    apiVersion = "v1"
    kind       = "PersistentVolumeClaim"
    metadata   = { name = "${local.prometheus_name}-data", namespace = var.namespace, labels = local.prometheus_labels }
    spec = {
      accessModes = ["ReadWriteOnce"]
      resources   = { requests = { storage = var.prometheus.storage } }
    }
  })
  depends_on = [kubectl_manifest.namespace]
}

resource "kubectl_manifest" "prometheus_deployment" {
  yaml_body = yamlencode({
    apiVersion = "apps/v1"
    kind       = "Deployment"
    metadata   = { name = local.prometheus_name, namespace = var.namespace, labels = local.prometheus_labels }
    spec = {
      replicas = 1
      strategy = { type = "Recreate" } # one writer of the data volume
      selector = { matchLabels = local.prometheus_selector }
      template = {
        metadata = {
          labels = local.prometheus_labels
          # Restart on config or rule changes.
          annotations = {
            "llm-tenants.io/config-sha256" = sha256(join("", [yamlencode(local.prometheus_config), file("${local.repository_root}/dashboards/alerts/rules.yml")]))
          }
        }
        spec = {
          serviceAccountName = module.prometheus_identity.service_account
          securityContext = {
            runAsNonRoot   = true
            runAsUser      = 65534
            runAsGroup     = 65534
            fsGroup        = 65534
            seccompProfile = { type = "RuntimeDefault" }
          }
          containers = [{
            name  = "prometheus"
            image = var.prometheus.image
            args = [
              "--config.file=/etc/prometheus/prometheus.yml",
              "--storage.tsdb.path=/prometheus",
              "--storage.tsdb.retention.time=${var.prometheus.retention}",
              "--web.enable-lifecycle",
            ]
            ports          = [{ name = "http", containerPort = local.prometheus_port }]
            readinessProbe = { httpGet = { path = "/-/ready", port = "http" }, periodSeconds = 5 }
            livenessProbe  = { httpGet = { path = "/-/healthy", port = "http" }, periodSeconds = 15 }
            resources = {
              requests = { cpu = var.prometheus.cpu_request, memory = var.prometheus.memory_request }
              limits   = { cpu = "2", memory = "4Gi" }
            }
            securityContext = local.restricted_container_security
            volumeMounts = [
              { name = "config", mountPath = "/etc/prometheus/prometheus.yml", subPath = "prometheus.yml", readOnly = true },
              { name = "rules", mountPath = "/etc/prometheus/rules", readOnly = true },
              { name = "data", mountPath = "/prometheus" },
            ]
          }]
          volumes = [
            { name = "config", configMap = { name = "${local.prometheus_name}-config" } },
            { name = "rules", configMap = { name = "${local.prometheus_name}-rules" } },
            { name = "data", persistentVolumeClaim = { claimName = "${local.prometheus_name}-data" } },
          ]
        }
      }
    }
  })
  wait_for_rollout = var.wait_for_rollout
  depends_on = [
    kubectl_manifest.prometheus_config, kubectl_manifest.prometheus_rules, kubectl_manifest.prometheus_data,
  ]
}

resource "kubectl_manifest" "prometheus_service" {
  yaml_body = yamlencode({
    apiVersion = "v1"
    kind       = "Service"
    metadata   = { name = local.prometheus_name, namespace = var.namespace, labels = local.prometheus_labels }
    spec = {
      selector = local.prometheus_selector
      ports    = [{ name = "http", port = local.prometheus_port, targetPort = "http" }]
    }
  })
  depends_on = [kubectl_manifest.namespace]
}
