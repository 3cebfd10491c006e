"""`tenantctl usage <tenant> [--since]`: totals, this month's budget and recent rows from the usage ledger.

Reads the ledger directly (the gateway need not run): `--ledger URL`, else the one of the
running `tenantctl up` (its state file), else the SQLite file of the default run directory.
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from llm_gateway.budgets import month_of
from llm_gateway.ledger import Ledger, UsageRecord, UsageTotals, open_ledger
from tenant_spec import SPEC_FILENAME, TenantSpec, load_tenant_spec
from tenantctl.local.state import DEFAULT_RUN_DIR, LEDGER_FILE, read_state

RELATIVE = re.compile(r"^(\d+)([mhd])$")
UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def register(subparsers) -> None:
    usage = subparsers.add_parser("usage", help="a tenant's usage and remaining budget, from the usage ledger")
    usage.add_argument("tenant")
    usage.add_argument(
        "--since",
        type=parse_since,
        metavar="WHEN",
        help="only usage from then on: 2025-11-01, 2025-11-01T12:00, or 30m / 12h / 7d ago",
    )
    usage.add_argument("--recent", type=int, default=10, metavar="N", help="recent rows to show (default 10)")
    usage.add_argument("--ledger", metavar="URL", help="sqlite:///path or postgresql://... (default: local mode's)")
    usage.add_argument("--run-dir", type=Path, default=DEFAULT_RUN_DIR)
    usage.set_defaults(handler=command_usage)


def parse_since(text: str) -> datetime:
    relative = RELATIVE.match(text)
    if relative:
        return datetime.now(UTC) - timedelta(**{UNITS[relative.group(2)]: int(relative.group(1))})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}': use a date (2025-11-01), a time (2025-11-01T12:00) or an age (30m, 12h, 7d)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def ledger_url(args: argparse.Namespace) -> str:
    if args.ledger:
        return args.ledger
    state = read_state(args.run_dir) or {}
    return state.get("ledger_url") or f"sqlite:///{(args.run_dir / LEDGER_FILE).resolve()}"


def command_usage(args: argparse.Namespace) -> int:
    spec = load_tenant_spec(args.tenants_dir / args.tenant / SPEC_FILENAME)
    url = ledger_url(args)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise RuntimeError(
            f"no usage ledger at {url.removeprefix('sqlite:///')}: start the platform "
            "(`tenantctl up`) or name one with --ledger"
        )
    ledger = open_ledger(url)
    try:
        print(report(ledger, spec, args.since, args.recent))
    finally:
        ledger.close()
    return 0


def report(ledger: Ledger, spec: TenantSpec, since: datetime | None, recent: int) -> str:
    now = datetime.now(UTC)
    month = month_of(now)
    totals = ledger.totals(spec.name, since)
    lines = [
        f"tenant {spec.name}: usage {'since ' + f'{since:%Y-%m-%d %H:%M} UTC' if since else 'all time'}",
        _totals_line(totals),
        *_by_model_lines(ledger.totals_by_model(spec.name, since)),
        "",
        f"budget {month.label} (resets {month.next_start:%Y-%m-%d} UTC):",
    ]
    lines += budget_lines(spec, ledger.totals(spec.name, month.start))
    rows = ledger.recent(spec.name, recent, since)
    lines += ["", f"recent requests ({len(rows)}):" if rows else "recent requests: none"]
    lines += _table(rows) if rows else []
    return "\n".join(lines)


def _totals_line(totals: UsageTotals) -> str:
    return (
        f"  requests {totals.requests}  prompt tokens {totals.prompt_tokens}  completion tokens "
        f"{totals.completion_tokens}  total tokens {totals.total_tokens}  cost ${totals.cost_usd:.6f}"
    )


def _by_model_lines(by_model: dict[str, UsageTotals]) -> list[str]:
    """One line per catalogue model the tenant used (cost at that model's prices)."""
    if not by_model:
        return []
    width = max(len(model) for model in by_model)
    return ["  by model:"] + [
        f"    {model.ljust(width)}  requests {row.requests}  tokens {row.total_tokens}  cost ${row.cost_usd:.6f}"
        for model, row in by_model.items()
    ]


def budget_lines(spec: TenantSpec, month_totals: UsageTotals) -> list[str]:
    lines = []
    if spec.monthly_token_budget is not None:
        left = max(0, spec.monthly_token_budget - month_totals.total_tokens)
        lines.append(f"  tokens  used {month_totals.total_tokens} of {spec.monthly_token_budget}  remaining {left}")
    if spec.monthly_budget_usd is not None:
        left_usd = max(0.0, spec.monthly_budget_usd - month_totals.cost_usd)
        lines.append(
            f"  cost    used ${month_totals.cost_usd:.6f} of ${spec.monthly_budget_usd:g}  remaining ${left_usd:.6f}"
        )
    return lines or ["  no budget set (monthly_token_budget, monthly_budget_usd)"]


def _table(rows: list[UsageRecord]) -> list[str]:
    header = ("TIME (UTC)", "REQUEST", "MODEL", "BACKEND", "PROMPT", "COMPL.", "COST $", "MS", "STATUS")
    cells = [header] + [
        (
            f"{row.created_at.astimezone(UTC):%Y-%m-%d %H:%M:%S}",
            row.request_id,
            row.model,
            row.backend,
            str(row.prompt_tokens),
            str(row.completion_tokens) + ("~" if row.usage_estimated else ""),
            f"{row.cost_usd:.6f}",
            f"{row.latency_ms:.0f}",
            row.status + (" (stream)" if row.stream else ""),
        )
        for row in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    table = [
        "  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    if any(row.usage_estimated for row in rows):
        table.append("  ~ the backend reported no usage: tokens counted by the gateway")
    return table
