output "service_account" {
  description = "Name of the ServiceAccount (for a Pod's serviceAccountName)."
  value       = var.name
  depends_on  = [kubectl_manifest.binding]
}
