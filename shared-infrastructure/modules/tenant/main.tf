# Every Kubernetes object of one tenant. A fix here reaches every tenant on its next apply.
#
# Objects are applied with the kubectl provider (gavinbunney/kubectl) from manifests built with
# yamlencode: the hashicorp/kubernetes provider (and its kubernetes_*_v1 resource types) cannot
# be built from the Go module proxy, see shared-infrastructure/README.md.

module "spec" {
  source = "./spec"

  spec     = var.spec
  document = var.spec
}

locals {
  spec = module.spec.spec

  # Platform constants: the shared gateway (shared-infrastructure/platform) and the proxy.
  gateway = {
    namespace  = var.monitoring_namespace
    service    = "llm-gateway"
    port       = 8080
    pod_labels = { "app.kubernetes.io/name" = "llm-gateway" }
  }
  proxy_name = "tenant-proxy"
  proxy_port = 8080
  # LimitRange defaults for containers in the namespace that declare no resources (the quota needs them).
  container_defaults = {
    cpu_request    = "100m"
    memory_request = "128Mi"
    cpu_limit      = "500m"
    memory_limit   = "512Mi"
  }
  # The tenant's Grafana dashboard (dashboards/generate.py renders the template).
  dashboard_json = replace(file("${path.module}/../../../dashboards/generated/tenant-template.json"), "__TENANT__", local.spec.name)

  common_labels = merge(var.labels, {
    "app.kubernetes.io/part-of"    = "llm-tenants"
    "app.kubernetes.io/managed-by" = "terraform"
    "app.kubernetes.io/instance"   = local.spec.name
    "llm-tenants.io/tenant"        = local.spec.name
  })
  proxy_selector = {
    "app.kubernetes.io/name"     = local.proxy_name
    "app.kubernetes.io/instance" = local.spec.name
  }
  proxy_labels = merge(local.common_labels, local.proxy_selector, { "app.kubernetes.io/component" = "proxy" })

  prompt_config_map = "${local.proxy_name}-prompt"
  key_secret        = "${local.proxy_name}-gateway-key"
  knowledge_claim   = "${local.proxy_name}-knowledge"
  knowledge_dir     = "/var/lib/tenant-proxy/knowledge"

  policy_config_map = "${local.proxy_name}-policy"
  policy_json = jsonencode({
    guardrails          = local.spec.guardrails
    end_user_key_sha256 = local.spec.end_user_key_sha256
    admin_key_sha256    = local.spec.admin_key_sha256
  })

  gateway_url = "http://${local.gateway.service}.${local.gateway.namespace}.svc.cluster.local:${local.gateway.port}/v1"

  # The API server stores CPU quantities canonically ("0.5" as "500m", "1.0" as "1"): write them that
  # way, or every plan would show the quota as changed.
  quota_cpu = can(regex("^[0-9]+\\.[0-9]+$", local.spec.quota.cpu)) ? (
    tonumber(local.spec.quota.cpu) == floor(tonumber(local.spec.quota.cpu)) ? tostring(floor(tonumber(local.spec.quota.cpu))) :
    format("%dm", floor(tonumber(local.spec.quota.cpu) * 1000 + 0.5))
  ) : local.spec.quota.cpu

  # The document volume's access mode, as fixed when the tenant was first applied (see
  # terraform_data.knowledge_access_mode). ReadWriteOnce allows one Pod: the proxy rolls by
  # Recreate (old Pod gone before the new one mounts it, also across nodes).
  knowledge_access_mode = terraform_data.knowledge_access_mode.output
  proxy_strategy        = local.knowledge_access_mode == "ReadWriteOnce" ? { type = "Recreate" } : { type = "RollingUpdate" }

  # What the gateway knows of the tenant: nothing but the route and the SHA-256 of its keys.
  route_spec = { for field, value in {
    # The catalogue models it may use (admitted by the platform's ModelCatalogue), unset fields left out.
    models     = { for field, value in local.spec.models : field => value if value != null }
    max_tokens = local.spec.max_tokens
    # The current key first, then earlier keys still accepted during a rotation.
    key_sha256           = distinct(concat([sha256(local.gateway_key)], local.spec.previous_gateway_key_sha256))
    rate_limits          = local.spec.rate_limits
    monthly_token_budget = local.spec.monthly_token_budget
    monthly_budget_usd   = local.spec.monthly_budget_usd
    # The request path (llm_gateway/concurrency.py, llm_common/request_contract.py).
    max_concurrent_requests    = local.spec.max_concurrent_requests
    allowed_request_extensions = local.spec.allowed_request_extensions
    # Sharing the model pool (llm_gateway/fair_queue.py, llm_gateway/prefix_cache.py).
    weight             = local.spec.weight
    prefix_cache_group = local.spec.prefix_cache_group
    # Where its alerts go: read by Alertmanager's config sync (platform root, alertmanager.tf).
    alerts = local.spec.alerts == null ? null : { for field, value in local.spec.alerts : field => value if value != null }
  } : field => value if value != null }

  alert_token_secret = try(local.spec.alerts.webhook_token_secret, null)

  # 2 x 122 random bits from uuid(); generated once, kept in state (see terraform_data.gateway_key).
  gateway_key = "gk-${replace(terraform_data.gateway_key.output, "-", "")}"
}

# The tenant's gateway key. The hashicorp/random provider is not available offline, so the key
# comes from uuid() (crypto/rand) and ignore_changes keeps the first value: `terraform apply
# -replace=module.tenant.terraform_data.gateway_key` rotates it.
resource "terraform_data" "gateway_key" {
  input = "${uuid()}${uuid()}"

  lifecycle {
    ignore_changes = [input]
  }
}

resource "kubectl_manifest" "namespace" {
  yaml_body = yamlencode({
    apiVersion = "v1"
    kind       = "Namespace"
    metadata = {
      name = local.spec.name
      labels = merge(local.common_labels, {
        "app.kubernetes.io/name" = local.spec.name
        # Pod Security Admission: only Pods meeting the "restricted" profile are admitted.
        "pod-security.kubernetes.io/enforce" = "restricted"
        "pod-security.kubernetes.io/warn"    = "restricted"
      })
      annotations = {
        "llm-tenants.io/display-name" = local.spec.display_name
        "llm-tenants.io/industry"     = local.spec.industry
      }
    }
  })
  wait = true # destroy returns once the namespace and everything in it are gone
}

resource "kubectl_manifest" "resource_quota" {
  yaml_body = yamlencode({
    apiVersion = "v1"
    kind       = "ResourceQuota"
    metadata   = { name = "tenant-quota", namespace = local.spec.name, labels = local.common_labels }
    spec = {
      hard = {
        "requests.cpu"           = local.quota_cpu
        "limits.cpu"             = local.quota_cpu
        "requests.memory"        = local.spec.quota.memory
        "limits.memory"          = local.spec.quota.memory
        "pods"                   = tostring(local.spec.quota.pods)
        "persistentvolumeclaims" = "2"
        "services.loadbalancers" = "0"
        "services.nodeports"     = "0"
      }
    }
  })
  depends_on = [kubectl_manifest.namespace]
}

resource "kubectl_manifest" "limit_range" {
  yaml_body = yamlencode({
    apiVersion = "v1"
    kind       = "LimitRange"
    metadata   = { name = "tenant-container-defaults", namespace = local.spec.name, labels = local.common_labels }
    spec = {
      limits = [{
        type           = "Container"
        defaultRequest = { cpu = local.container_defaults.cpu_request, memory = local.container_defaults.memory_request }
        default        = { cpu = local.container_defaults.cpu_limit, memory = local.container_defaults.memory_limit }
        max            = { cpu = local.quota_cpu, memory = local.spec.quota.memory }
      }]
    }
  })
  depends_on = [kubectl_manifest.namespace]
}

# -- Access: the tenant's admins and the proxy's own identity ----------------------------------

resource "kubectl_manifest" "admin_role" {
  yaml_body = yamlencode({
    apiVersion = "rbac.authorization.k8s.io/v1"
    kind       = "Role"
    metadata   = { name = "tenant-admin", namespace = local.spec.name, labels = local.common_labels }
    rules = [
      {
        apiGroups = [""]
        resources = ["pods", "pods/log", "services", "configmaps", "secrets", "persistentvolumeclaims", "serviceaccounts", "events"]
        verbs     = ["get", "list", "watch", "create", "update", "patch", "delete"]
      },
      {
        apiGroups = ["apps"]
        resources = ["deployments", "deployments/scale", "replicasets", "statefulsets"]
        verbs     = ["get", "list", "watch", "create", "update", "patch", "delete"]
      },
      {
        # The guard rails are the platform's: tenant admins may read them, not lift them.
        apiGroups = ["", "networking.k8s.io", "rbac.authorization.k8s.io"]
        resources = ["resourcequotas", "limitranges", "networkpolicies", "roles", "rolebindings"]
        verbs     = ["get", "list", "watch"]
      },
    ]
  })
  depends_on = [kubectl_manifest.namespace]
}

resource "kubectl_manifest" "admin_role_binding" {
  yaml_body = yamlencode({
    apiVersion = "rbac.authorization.k8s.io/v1"
    kind       = "RoleBinding"
    metadata   = { name = "tenant-admin", namespace = local.spec.name, labels = local.common_labels }
    roleRef    = { apiGroup = "rbac.authorization.k8s.io", kind = "Role", name = "tenant-admin" }
    subjects   = [{ apiGroup = "rbac.authorization.k8s.io", kind = "Group", name = local.spec.admin_group }]
  })
  depends_on = [kubectl_manifest.admin_role]
}

# The proxy reads its prompt and key from mounted files: no API token is mounted, and its only
# right is reading its own prompt ConfigMap.
module "proxy_identity" {
  source = "../service-identity"

  name            = local.proxy_name
  namespace       = local.spec.name
  labels          = local.proxy_labels
  automount_token = false
  rules           = [{ apiGroups = [""], resources = ["configmaps"], resourceNames = [local.prompt_config_map], verbs = ["get", "watch"] }]

  depends_on = [kubectl_manifest.namespace]
}

# -- Configuration: prompt, key, knowledge storage ---------------------------------------------

resource "kubectl_manifest" "prompt" {
  yaml_body = yamlencode({
    apiVersion = "v1"
    kind       = "ConfigMap"
    metadata   = { name = local.prompt_config_map, namespace = local.spec.name, labels = local.proxy_labels }
    data       = { system_prompt = local.spec.system_prompt }
  })
  depends_on = [kubectl_manifest.namespace]
}

resource "kubectl_manifest" "gateway_key" {
  yaml_body = yamlencode({
    apiVersion = "v1"
    kind       = "Secret"
    metadata   = { name = local.key_secret, namespace = local.spec.name, labels = local.proxy_labels }
    type       = "Opaque"
    data       = { key = base64encode(local.gateway_key) }
  })
  sensitive_fields = ["data"]
  depends_on       = [kubectl_manifest.namespace]
}

# What the gateway needs to know about the tenant, as a TenantRoute (llm-tenants.io, defined by the
# platform root) in the gateway's namespace: the gateway may read these objects and nothing else
# there, and they hold the route and the SHA-256 of the key, never the key itself.
resource "kubectl_manifest" "gateway_route" {
  yaml_body = yamlencode({
    apiVersion = "llm-tenants.io/v1alpha1"
    kind       = "TenantRoute"
    metadata = {
      name      = local.spec.name
      namespace = var.monitoring_namespace
      labels    = local.common_labels
    }
    spec = local.route_spec
  })
}

# The webhook token of the tenant's alerts: Alertmanager's config sync (the platform's `alertmanager`
# ServiceAccount) may read this one Secret of the namespace, which the tenant's admins create
# (`kubectl -n <tenant> create secret generic <name> --from-literal=token=...`), and nothing else.
resource "kubectl_manifest" "alert_token_reader" {
  count = local.alert_token_secret == null ? 0 : 1

  yaml_body = yamlencode({
    apiVersion = "rbac.authorization.k8s.io/v1"
    kind       = "Role"
    metadata   = { name = "alertmanager-token-reader", namespace = local.spec.name, labels = local.common_labels }
    rules      = [{ apiGroups = [""], resources = ["secrets"], resourceNames = [local.alert_token_secret], verbs = ["get"] }]
  })
  depends_on = [kubectl_manifest.namespace]
}

resource "kubectl_manifest" "alert_token_reader_binding" {
  count = local.alert_token_secret == null ? 0 : 1

  yaml_body = yamlencode({
    apiVersion = "rbac.authorization.k8s.io/v1"
    kind       = "RoleBinding"
    metadata   = { name = "alertmanager-token-reader", namespace = local.spec.name, labels = local.common_labels }
    roleRef    = { apiGroup = "rbac.authorization.k8s.io", kind = "Role", name = "alertmanager-token-reader" }
    subjects   = [{ kind = "ServiceAccount", name = "alertmanager", namespace = var.monitoring_namespace }]
  })
  depends_on = [kubectl_manifest.alert_token_reader]
}

# Guardrails, end-user and admin key hashes, read by the proxy at start (PROXY_POLICY_FILE).
resource "kubectl_manifest" "policy" {
  yaml_body = yamlencode({
    apiVersion = "v1"
    kind       = "ConfigMap"
    metadata   = { name = local.policy_config_map, namespace = local.spec.name, labels = local.proxy_labels }
    data       = { "policy.json" = local.policy_json }
  })
  depends_on = [kubectl_manifest.namespace]
}

# The claim's access mode cannot change once it exists (the API refuses it): it is fixed by the first
# apply (onboarding) and kept, whatever proxy_replicas becomes later.
resource "terraform_data" "knowledge_access_mode" {
  input = local.spec.knowledge_storage.access_mode

  lifecycle {
    ignore_changes = [input]
  }
}

resource "kubectl_manifest" "knowledge_claim" {
  yaml_body = yamlencode({
    apiVersion = "v1"
    kind       = "PersistentVolumeClaim"
    metadata   = { name = local.knowledge_claim, namespace = local.spec.name, labels = local.proxy_labels }
    spec = merge(
      {
        accessModes = [local.knowledge_access_mode]
        resources   = { requests = { storage = local.spec.knowledge_storage.size } }
      },
      local.spec.knowledge_storage.storage_class == null ? {} : { storageClassName = local.spec.knowledge_storage.storage_class },
    )
  })
  depends_on = [kubectl_manifest.resource_quota]
}

# -- The proxy ---------------------------------------------------------------------------------

resource "kubectl_manifest" "proxy_deployment" {
  yaml_body = yamlencode({
    apiVersion = "apps/v1"
    kind       = "Deployment"
    metadata   = { name = local.proxy_name, namespace = local.spec.name, labels = local.proxy_labels }
    spec = {
      replicas = local.spec.proxy.replicas
      strategy = local.proxy_strategy
      selector = { matchLabels = local.proxy_selector }
      template = {
        metadata = {
          labels = local.proxy_labels
          annotations = {
            "prometheus.io/scrape" = "true"
            "prometheus.io/port"   = tostring(local.proxy_port)
            "prometheus.io/path"   = "/metrics"
            # The proxy reads its prompt, key and policy once: a change of any rolls the Pods (old Pods keep
            # working with the old key while the gateway accepts both, see previous_gateway_key_sha256).
            "llm-tenants.io/prompt-sha256"      = sha256(local.spec.system_prompt)
            "llm-tenants.io/gateway-key-sha256" = sha256(local.gateway_key)
            "llm-tenants.io/policy-sha256"      = sha256(local.policy_json)
          }
        }
        spec = {
          serviceAccountName           = module.proxy_identity.service_account
          automountServiceAccountToken = false
          securityContext = {
            runAsNonRoot   = true
            runAsUser      = 10001
            runAsGroup     = 10001
            fsGroup        = 10001
            seccompProfile = { type = "RuntimeDefault" }
          }
          containers = [{
            name    = "proxy"
            image   = var.proxy_image
            command = ["gunicorn", "-c", "python:llm_common.gunicorn_conf", "app:build_from_environment()"]
            ports   = [{ name = "http", containerPort = local.proxy_port }]
            env = [
              { name = "TENANT_NAME", value = local.spec.name },
              { name = "TENANT_DISPLAY_NAME", value = local.spec.display_name },
              { name = "GATEWAY_URL", value = local.gateway_url },
              { name = "SYSTEM_PROMPT_FILE", value = "/etc/tenant-proxy/prompt/system_prompt" },
              { name = "GATEWAY_KEY_FILE", value = "/etc/tenant-proxy/gateway-key/key" },
              { name = "PROXY_POLICY_FILE", value = "/etc/tenant-proxy/policy/policy.json" },
              { name = "MAX_TOKENS", value = tostring(local.spec.max_tokens) },
              { name = "KNOWLEDGE_DIR", value = local.knowledge_dir },
              { name = "BIND", value = "0.0.0.0:${local.proxy_port}" },
              { name = "WEB_CONCURRENCY", value = tostring(local.spec.proxy.workers) },
              { name = "PROMETHEUS_MULTIPROC_DIR", value = "/tmp/metrics" },
            ]
            resources = {
              requests = { cpu = local.spec.proxy.cpu_request, memory = local.spec.proxy.memory_request }
              limits   = { cpu = local.spec.proxy.cpu_limit, memory = local.spec.proxy.memory_limit }
            }
            readinessProbe = { httpGet = { path = "/healthz", port = "http" }, periodSeconds = 2 }
            livenessProbe  = { httpGet = { path = "/healthz", port = "http" }, periodSeconds = 10, failureThreshold = 3 }
            securityContext = {
              allowPrivilegeEscalation = false
              readOnlyRootFilesystem   = true
              capabilities             = { drop = ["ALL"] }
            }
            volumeMounts = [
              { name = "prompt", mountPath = "/etc/tenant-proxy/prompt", readOnly = true },
              { name = "gateway-key", mountPath = "/etc/tenant-proxy/gateway-key", readOnly = true },
              { name = "policy", mountPath = "/etc/tenant-proxy/policy", readOnly = true },
              { name = "knowledge", mountPath = local.knowledge_dir },
              { name = "tmp", mountPath = "/tmp" },
            ]
          }]
          volumes = [
            { name = "prompt", configMap = { name = local.prompt_config_map } },
            { name = "gateway-key", secret = { secretName = local.key_secret } },
            { name = "policy", configMap = { name = local.policy_config_map } },
            { name = "knowledge", persistentVolumeClaim = { claimName = local.knowledge_claim } },
            { name = "tmp", emptyDir = { medium = "Memory", sizeLimit = "64Mi" } },
          ]
        }
      }
    }
  })
  wait_for_rollout = var.wait_for_rollout

  lifecycle {
    precondition {
      condition     = local.spec.proxy.replicas <= 1 || local.knowledge_access_mode == "ReadWriteMany"
      error_message = "proxy replicas > 1: the tenant's document volume was created ReadWriteOnce when it was onboarded, and a claim's access mode cannot change. Keep one replica, or move the documents to a new ReadWriteMany claim (destroy and re-apply the tenant with knowledge_storage_access_mode = \"ReadWriteMany\")."
    }
  }
  depends_on = [
    kubectl_manifest.resource_quota, kubectl_manifest.limit_range,
    kubectl_manifest.prompt, kubectl_manifest.gateway_key, kubectl_manifest.policy, kubectl_manifest.knowledge_claim,
  ]
}

resource "kubectl_manifest" "proxy_service" {
  yaml_body = yamlencode({
    apiVersion = "v1"
    kind       = "Service"
    metadata   = { name = local.proxy_name, namespace = local.spec.name, labels = local.proxy_labels }
    spec = {
      selector = local.proxy_selector
      ports    = [{ name = "http", port = local.proxy_port, targetPort = "http" }]
    }
  })
  depends_on = [kubectl_manifest.namespace]
}

# -- Network: deny by default; in from Prometheus and the ingress controller; out to the gateway and DNS

locals {
  network_policies = {
    "default-deny" = {
      podSelector = {}
      policyTypes = ["Ingress", "Egress"]
    }
    "proxy-ingress" = {
      podSelector = { matchLabels = local.proxy_selector }
      policyTypes = ["Ingress"]
      ingress = [{
        from = [
          # Prometheus only, not every Pod of the platform's namespace.
          {
            namespaceSelector = { matchLabels = { "kubernetes.io/metadata.name" = var.monitoring_namespace } }
            podSelector       = { matchLabels = var.prometheus_pod_labels }
          },
          { namespaceSelector = { matchLabels = { "kubernetes.io/metadata.name" = local.spec.ingress_namespace } } },
        ]
        ports = [{ protocol = "TCP", port = local.proxy_port }]
      }]
    }
    "proxy-egress" = {
      podSelector = { matchLabels = local.proxy_selector }
      policyTypes = ["Egress"]
      egress = [
        {
          to = [{
            namespaceSelector = { matchLabels = { "kubernetes.io/metadata.name" = local.gateway.namespace } }
            podSelector       = { matchLabels = local.gateway.pod_labels }
          }]
          ports = [{ protocol = "TCP", port = local.gateway.port }]
        },
        {
          to = [{
            namespaceSelector = { matchLabels = { "kubernetes.io/metadata.name" = "kube-system" } }
            podSelector       = { matchLabels = { "k8s-app" = "kube-dns" } }
          }]
          ports = [{ protocol = "UDP", port = 53 }, { protocol = "TCP", port = 53 }]
        },
      ]
    }
  }
}

resource "kubectl_manifest" "network_policy" {
  for_each = local.network_policies

  yaml_body = yamlencode({
    apiVersion = "networking.k8s.io/v1"
    kind       = "NetworkPolicy"
    metadata   = { name = each.key, namespace = local.spec.name, labels = local.common_labels }
    spec       = each.value
  })
  depends_on = [kubectl_manifest.namespace]
}

# -- Observability: the tenant's Grafana dashboard, picked up by Grafana's dashboard sidecar

resource "kubectl_manifest" "dashboard" {
  yaml_body = yamlencode({
    apiVersion = "v1"
    kind       = "ConfigMap"
    metadata = {
      name      = "grafana-dashboard-tenant-${local.spec.name}"
      namespace = var.monitoring_namespace
      labels    = merge(local.common_labels, { "grafana_dashboard" = "1" })
    }
    data = { "tenant-${local.spec.name}.json" = local.dashboard_json }
  })
}
