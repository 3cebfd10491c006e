"""The tenant spec: the contract every part of the platform reads (one `tenant.json` per tenant).

The bottom of the codebase: it imports nothing of the platform's own. The services (app/,
llm_gateway/), the alert config sync, the dashboards and tenantctl build on it.
"""

from tenant_spec.files import (
    SPEC_FILENAME,
    TEMPLATE_DIRNAME,
    SpecError,
    discover_tenant_specs,
    load_tenant_spec,
    parse_tenant_spec,
)
from tenant_spec.model import TENANT_NAME_MAX_LENGTH, TenantSpec

__all__ = [
    "SPEC_FILENAME",
    "TEMPLATE_DIRNAME",
    "TENANT_NAME_MAX_LENGTH",
    "SpecError",
    "TenantSpec",
    "discover_tenant_specs",
    "load_tenant_spec",
    "parse_tenant_spec",
]
