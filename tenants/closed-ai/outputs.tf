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

output "admin_group" {
  description = "Group whose members administer the namespace."
  value       = module.tenant.admin_group
}
