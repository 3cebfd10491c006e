"""Where alerts go: the one renderer of Alertmanager's config (routing.py), and the cluster's sidecar
process that keeps that config equal to the tenants' TenantRoutes (sync.py; `python -m alert_config_sync`)."""
