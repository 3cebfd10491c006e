output "namespace" {
  description = "The tenant's namespace."
  value       = module.tenant.namespace
}

output "proxy_url" {
  description = "In-cluster URL of the tenant proxy: POST /ask."
  value       = module.tenant.proxy_url
}

output "gateway_key_secret" {
  description = "namespace/name of the Secret with the tenant's gateway key."
  value       = module.tenant.gateway_key_secret
}

output "gateway_key_sha256" {
  description = "SHA-256 of the current gateway key: put it in previous_gateway_key_sha256 before rotating the key."
  value       = module.tenant.gateway_key_sha256
}

output "admin_group" {
  description = "Group whose members administer the namespace."
  value       = module.tenant.admin_group
}
