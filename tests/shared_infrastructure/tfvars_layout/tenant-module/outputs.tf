output "namespace" {
  description = "The tenant's namespace."
  value       = var.name
}

output "proxy_url" {
  description = "In-cluster URL of the tenant proxy (POST /ask)."
  value       = "http://${local.proxy_name}.${var.name}.svc.cluster.local:${local.proxy_port}"
}

output "gateway_key_secret" {
  description = "namespace/name of the Secret holding the tenant's gateway key."
  value       = "${var.name}/${local.key_secret}"
}

output "gateway_key_sha256" {
  description = "SHA-256 of the tenant's gateway key, as the gateway stores it."
  value       = sha256(local.gateway_key)
}

output "admin_group" {
  description = "Group bound to the tenant-admin Role."
  value       = var.admin_group
}
