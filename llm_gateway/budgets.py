"""Monthly budgets per tenant: tokens (`monthly_token_budget`) and estimated cost in US dollars
(`monthly_budget_usd`, priced by llm_gateway/pricing.py), per calendar month in UTC.

The ledger is the record; Redis holds this month's running totals so that checking a budget
costs nothing beyond the rate limit call (the same Lua script checks both, see limits.py).
A month's counter missing from Redis (a new month, or Redis restarted or flushed) is loaded from
the ledger before a request is admitted, and a finishing request never creates it from its own
tokens (it reloads it from the ledger instead), so losing Redis never lowers a month's total
below the ledger's.

A request is refused (429, type `insufficient_quota`) once the month's usage has reached
the budget. Usage is known only when a request finishes, so requests already in flight
when the budget runs out may take it past the limit, by at most their own tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from llm_gateway.ledger.asynchronous import AsyncLedger
from llm_gateway.limits import Check, SharedCounters

NANO = 1_000_000_000  # cost is counted in Redis as whole nano-dollars (INCRBY needs integers)
MONTH_TTL_SECONDS = 40 * 24 * 3600


@dataclass(frozen=True)
class Month:
    label: str  # "2025-11"
    start: datetime
    next_start: datetime

    @property
    def seconds_left(self) -> int:
        return max(1, int((self.next_start - datetime.now(UTC)).total_seconds()))


def month_of(moment: datetime) -> Month:
    moment = moment.astimezone(UTC)
    start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if start.month == 12:
        next_start = start.replace(year=start.year + 1, month=1)
    else:
        next_start = start.replace(month=start.month + 1)
    return Month(start.strftime("%Y-%m"), start, next_start)


@dataclass(frozen=True)
class Budget:
    """What a tenant may spend per month; None means no limit of that kind."""

    tokens: int | None = None
    usd: float | None = None

    @property
    def enabled(self) -> bool:
        return self.tokens is not None or self.usd is not None


def tokens_key(counters: SharedCounters, tenant: str, month: Month) -> str:
    return counters.key("budget", tenant, month.label, "tokens")


def cost_key(counters: SharedCounters, tenant: str, month: Month) -> str:
    return counters.key("budget", tenant, month.label, "nano_usd")


def budget_checks(counters: SharedCounters, tenant: str, budget: Budget, month: Month) -> list[Check]:
    """Refuse once this month's tokens or cost have reached the budget."""
    resets = f"it resets on {month.next_start:%Y-%m-%d} (UTC)"
    checks = []
    if budget.tokens is not None:
        checks.append(
            Check(
                tokens_key(counters, tenant, month),
                budget.tokens,
                0,
                MONTH_TTL_SECONDS,
                "monthly_token_budget",
                f"the monthly token budget of {budget.tokens} tokens is used up; {resets}",
                month.seconds_left,
                error_type="insufficient_quota",
                must_exist=True,
            )
        )
    if budget.usd is not None:
        checks.append(
            Check(
                cost_key(counters, tenant, month),
                round(budget.usd * NANO),
                0,
                MONTH_TTL_SECONDS,
                "monthly_cost_budget",
                f"the monthly budget of {budget.usd:g} USD (estimated cost) is used up; {resets}",
                month.seconds_left,
                error_type="insufficient_quota",
                must_exist=True,
            )
        )
    return checks


async def seed_from_ledger(
    counters: SharedCounters, ledger: AsyncLedger | None, tenant: str, month: Month
) -> tuple[int, int]:
    """Raise this month's counters in Redis to the ledger's totals (never lowering them: another
    worker may have seeded and added since); returns (tokens, nano-dollars) now counted."""
    totals = await ledger.totals(tenant, since=month.start) if ledger is not None else None
    tokens = totals.total_tokens if totals else 0
    nano_usd = round(totals.cost_usd * NANO) if totals else 0
    return (
        await counters.seed(tokens_key(counters, tenant, month), tokens, MONTH_TTL_SECONDS),
        await counters.seed(cost_key(counters, tenant, month), nano_usd, MONTH_TTL_SECONDS),
    )


def remaining(budget: Budget, used_tokens: int, used_nano_usd: int) -> dict[str, float]:
    """{"tokens": n, "usd": x} for the kinds the tenant has a budget of (never below 0)."""
    left: dict[str, float] = {}
    if budget.tokens is not None:
        left["tokens"] = max(0, budget.tokens - used_tokens)
    if budget.usd is not None:
        left["usd"] = max(0.0, budget.usd - used_nano_usd / NANO)
    return left
