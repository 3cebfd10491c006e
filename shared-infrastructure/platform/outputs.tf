output "namespace" {
  description = "Namespace of the shared platform."
  value       = var.namespace
}

output "gateway_url" {
  description = "In-cluster base URL of the gateway's OpenAI API."
  value       = "http://${local.gateway_name}.${var.namespace}.svc.cluster.local:${local.gateway_port}/v1"
}

output "prometheus_url" {
  description = "In-cluster Prometheus URL (kubectl -n <namespace> port-forward svc/prometheus 9090)."
  value       = "http://${local.prometheus_name}.${var.namespace}.svc.cluster.local:${local.prometheus_port}"
}

output "grafana_url" {
  description = "In-cluster Grafana URL (kubectl -n <namespace> port-forward svc/grafana 3000); null when grafana.enabled is false."
  value       = local.grafana_enabled ? "http://${local.grafana_name}.${var.namespace}.svc.cluster.local:${local.grafana_port}" : null
}

output "grafana_admin_password" {
  description = "Grafana's admin password (user admin)."
  value       = local.grafana_admin_password
  sensitive   = true
}

output "alertmanager_url" {
  description = "In-cluster Alertmanager URL (kubectl -n <namespace> port-forward svc/alertmanager 9093; amtool --alertmanager.url=http://127.0.0.1:9093 silence add ...)."
  value       = "http://${local.alertmanager_url}"
}
