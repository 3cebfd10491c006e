"""No state-changing request from another site: what a web page could make a visitor's browser send.

A page on any site can make a browser POST a "simple request" (a form, or fetch with text/plain)
to the proxy, with the visitor's network position, and CORS does not stop the request, only the
page reading the answer. Browsers say where a request comes from: `Sec-Fetch-Site` (all current
browsers) and `Origin` (on every cross-origin POST). POST, PUT, PATCH and DELETE are refused (403
`cross_site_request`) when `Sec-Fetch-Site` is `cross-site` or `same-site` (another host of the same
domain, e.g. another tenant's proxy), or when `Origin` names another host than the request's.
Requests without these headers (curl, SDKs, tenantctl) are not affected; the chat page is same-origin.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, request

from llm_common.errors import ApiError

STATE_CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FOREIGN_SITES = frozenset({"cross-site", "same-site"})


def refuse_cross_site_requests(app: Flask) -> None:
    @app.before_request
    def _same_origin_only() -> None:
        if request.method not in STATE_CHANGING_METHODS:
            return
        site = request.headers.get("Sec-Fetch-Site", "").lower()
        origin = request.headers.get("Origin")
        if site in FOREIGN_SITES or (origin is not None and not _same_host(origin, request.host)):
            raise ApiError(403, "requests from another site's web page are not accepted", code="cross_site_request")


def _same_host(origin: str, host: str) -> bool:
    """Whether an `Origin` header (scheme://host[:port], or "null") names this request's host."""
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:
        return False
    return bool(netloc) and netloc.lower() == host.lower()
