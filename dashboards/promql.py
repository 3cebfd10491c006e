"""Small builders for the PromQL the dashboards use, so every query is written one way.

Range selectors use Grafana's `$__rate_interval`; `reading.for_prometheus` replaces it
when a query is sent to Prometheus directly (report, tests).
"""

from __future__ import annotations

RATE_INTERVAL = "$__rate_interval"


def selector(metric: str, *matchers: str) -> str:
    """`metric{m1,m2}`; matchers are written out, e.g. 'tenant="acme-corp"' or 'status=~"5.."'."""
    return f"{metric}{{{', '.join(matchers)}}}" if matchers else metric


def rate(metric: str, *matchers: str, window: str = RATE_INTERVAL) -> str:
    return f"rate({selector(metric, *matchers)}[{window}])"


def sum_by(labels: str, expr: str) -> str:
    return f"sum by ({labels}) ({expr})" if labels else f"sum({expr})"


def quantile(q: float, histogram: str, by: str, *matchers: str) -> str:
    """The q-quantile of a histogram (its base name, without `_bucket`), per `by`."""
    group = f"{by}, le" if by else "le"
    return f"histogram_quantile({q}, sum by ({group}) ({rate(histogram + '_bucket', *matchers)}))"


def ratio(part: str, whole: str) -> str:
    """part / whole, and 0 (not 'no data') where `whole` has series but `part` has none yet.

    Both must be aggregated by the same labels; `0 * whole` keeps those labels.
    """
    return f"({part} or 0 * {whole}) / {whole}"


def tenant_matcher(tenant: str | None) -> tuple[str, ...]:
    """The matcher that scopes a query to one tenant, or none for cross-tenant dashboards."""
    return (f'tenant="{tenant}"',) if tenant is not None else ()
