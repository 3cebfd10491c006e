# The usage ledger (llm_gateway/ledger): one PostgreSQL row per finished request. With
# `ledger.dsn` empty (the default) the platform runs its own PostgreSQL StatefulSet with a
# persistent volume; otherwise the gateway uses the given database (e.g. a managed one).
# Either way the DSN reaches the gateway only as the Secret `llm-gateway-ledger`, mounted
# as a file (LLM_LEDGER_URL_FILE), never in its ConfigMap.

locals {
  ledger_name       = "llm-ledger"
  ledger_port       = 5432
  ledger_selector   = { "app.kubernetes.io/name" = local.ledger_name }
  ledger_labels     = merge(local.common_labels, local.ledger_selector, { "app.kubernetes.io/component" = "usage-ledger" })
  ledger_in_cluster = nonsensitive(var.ledger.dsn == "")
  ledger_password   = replace(terraform_data.ledger_password.output, "-", "")
  ledger_dsn = local.ledger_in_cluster ? format("postgresql://ledger:%s@%s.%s.svc.cluster.local:%d/ledger",
  local.ledger_password, local.ledger_name, var.namespace, local.ledger_port) : var.ledger.dsn
}

# Generated once (uuid(), kept by ignore_changes), like the Grafana admin password.
resource "terraform_data" "ledger_password" {
  input = "${uuid()}${uuid()}"

  lifecycle {
    ignore_changes = [input]
  }
}

resource "kubectl_manifest" "ledger_dsn" {
  yaml_body = yamlencode({
    apiVersion = "v1"
    kind       = "Secret"
    metadata   = { name = "llm-gateway-ledger", namespace = var.namespace, labels = local.gateway_labels }
    type       = "Opaque"
    data       = { dsn = base64encode(local.ledger_dsn) }
  })
  sensitive_fields = ["data"]
  depends_on       = [kubectl_manifest.namespace]
}

resource "kubectl_manifest" "ledger_credentials" {
  count = local.ledger_in_cluster ? 1 : 0

  yaml_body = yamlencode({
    apiVersion = "v1"
    kind       = "Secret"
    metadata   = { name = "${local.ledger_name}-credentials", namespace = var.namespace, labels = local.ledger_labels }
    type       = "Opaque"
    data       = { password = base64encode(local.ledger_password) }
  })
  sensitive_fields = ["data"]
  depends_on       = [kubectl_manifest.namespace]
}

resource "kubectl_manifest" "ledger_statefulset" {
  count = local.ledger_in_cluster ? 1 : 0

  yaml_body = yamlencode({
    apiVersion = "apps/v1"
    kind       = "StatefulSet"
    metadata   = { name = local.ledger_name, namespace = var.namespace, labels = local.ledger_labels }
    spec = {
      serviceName = local.ledger_name
      replicas    = 1
      selector    = { matchLabels = local.ledger_selector }
      template = {
        metadata = { labels = local.ledger_labels }
        spec = {
          automountServiceAccountToken = false
          securityContext              = local.data_store_pod_security
          containers = [{
            name  = "postgres"
            image = var.ledger.postgres_image
            env = [
              { name = "POSTGRES_USER", value = "ledger" },
              { name = "POSTGRES_DB", value = "ledger" },
              { name = "POSTGRES_PASSWORD", valueFrom = { secretKeyRef = { name = "${local.ledger_name}-credentials", key = "password" } } },
              { name = "PGDATA", value = "/var/lib/postgresql/data/pgdata" },
            ]
            ports = [{ name = "postgres", containerPort = local.ledger_port }]
            resources = {
              requests = { cpu = var.ledger.cpu_request, memory = var.ledger.memory_request }
              limits   = { cpu = "2", memory = "1Gi" }
            }
            readinessProbe  = { exec = { command = ["pg_isready", "-U", "ledger", "-d", "ledger"] }, periodSeconds = 5 }
            livenessProbe   = { tcpSocket = { port = "postgres" }, periodSeconds = 10 }
            securityContext = local.restricted_container_security
            volumeMounts = [
              { name = "data", mountPath = "/var/lib/postgresql/data" },
              { name = "run", mountPath = "/var/run/postgresql" },
              { name = "tmp", mountPath = "/tmp" },
            ]
          }]
          volumes = [
            { name = "run", emptyDir = { medium = "Memory", sizeLimit = "16Mi" } },
            { name = "tmp", emptyDir = { medium = "Memory", sizeLimit = "64Mi" } },
          ]
        }
      }
      volumeClaimTemplates = [{
        metadata = { name = "data", labels = local.ledger_labels }
        spec = merge(
          { accessModes = ["ReadWriteOnce"], resources = { requests = { storage = var.ledger.storage } } },
          var.ledger.storage_class == null ? {} : { storageClassName = var.ledger.storage_class },
        )
      }]
    }
  })
  wait_for_rollout = var.wait_for_rollout
  depends_on       = [kubectl_manifest.ledger_credentials]
}

resource "kubectl_manifest" "ledger_service" {
  count = local.ledger_in_cluster ? 1 : 0

  yaml_body = yamlencode({
    apiVersion = "v1"
    kind       = "Service"
    metadata   = { name = local.ledger_name, namespace = var.namespace, labels = local.ledger_labels }
    spec = {
      selector = local.ledger_selector
      ports    = [{ name = "postgres", port = local.ledger_port, targetPort = "postgres" }]
    }
  })
  depends_on = [kubectl_manifest.namespace]
}

# Only the gateway talks to the ledger database.
resource "kubectl_manifest" "ledger_network_policy" {
  count = local.ledger_in_cluster ? 1 : 0

  yaml_body = yamlencode({
    apiVersion = "networking.k8s.io/v1"
    kind       = "NetworkPolicy"
    metadata   = { name = "${local.ledger_name}-ingress", namespace = var.namespace, labels = local.ledger_labels }
    spec = {
      podSelector = { matchLabels = local.ledger_selector }
      policyTypes = ["Ingress"]
      ingress = [{
        from  = [{ podSelector = { matchLabels = local.gateway_selector } }]
        ports = [{ protocol = "TCP", port = local.ledger_port }]
      }]
    }
  })
  depends_on = [kubectl_manifest.namespace]
}
