"""The TenantRoute: what the gateway knows of a tenant, built from the spec's own fields.

Local mode writes one per tenant into the gateway's config file; on a cluster each tenant apply
writes a TenantRoute object (llm-tenants.io/v1alpha1) into the gateway's namespace, whose CRD schema
(shared-infrastructure/platform/tenant_route_schema.json) is generated from this model
(`python -m tenant_spec.generate`). A spec field the gateway needs is added to ROUTE_FIELDS, and
to the route the tenant module writes (shared-infrastructure/modules/tenant/main.tf).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from tenant_spec.fields import Sha256Digests
from tenant_spec.model import TenantSpec, spec_fields
from tenant_spec.problems import problems
from tenant_spec.rate_limits import RateLimits

ROUTE_GROUP = "llm-tenants.io"
ROUTE_VERSION = "v1alpha1"
ROUTE_PLURAL = "tenantroutes"
ROUTE_FIELDS = (
    "models",
    "max_tokens",
    "monthly_budget_usd",
    "monthly_token_budget",
    "max_concurrent_requests",
    "allowed_request_extensions",
    "weight",
    "prefix_cache_group",
)


class _RouteIdentity(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=40, description="The tenant's name (the TenantRoute object's).")
    key_sha256: Sha256Digests = Field(
        min_length=1,
        description="Hex SHA-256 of every gateway key valid for the tenant (the current one and those being "
        "rotated out).",
    )
    rate_limits: RateLimits | None = Field(None, description="The spec's rate_limits; None: not limited.")
    alerts: dict | None = Field(
        None,
        description="The spec's alerts, read by the alert config sync (which validates them itself), never by "
        "the gateway.",
    )


TenantRoute = create_model(
    "TenantRoute",
    __base__=_RouteIdentity,
    __doc__="What the gateway knows about a tenant.",
    **spec_fields(*ROUTE_FIELDS),
)


def gateway_route(spec: TenantSpec, key_sha256: list[str]) -> dict:
    """The route of a tenant, as local mode writes it into the gateway's config (and the module to a cluster)."""
    return {
        "name": spec.name,
        "key_sha256": key_sha256,
        "rate_limits": spec.rate_limits.model_dump(),
        **spec.model_dump(include=set(ROUTE_FIELDS)),
    }


def route_from_object(route: dict) -> TenantRoute:
    """Validate one TenantRoute object (its name is the tenant's); ValueError says what is wrong with it."""
    spec = route.get("spec") if isinstance(route, dict) else None
    if not isinstance(spec, dict):
        raise ValueError("has no spec")
    try:
        return TenantRoute.model_validate({**spec, "name": route["metadata"]["name"]})
    except (KeyError, TypeError):
        raise ValueError("has no metadata.name") from None
    except ValidationError as error:
        raise ValueError(f"invalid spec: {'; '.join(problems(error))}") from None
