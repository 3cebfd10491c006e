"""Grafana dashboards and Prometheus alert rules for the platform, as code.

- `panels.py`: what each dashboard shows (titles, units, PromQL), one place for all.
- `grafana.py`: turns that into Grafana dashboard JSON with grafana-foundation-sdk.
- `generate.py`: writes `generated/*.json` (`python -m dashboards` or `tenantctl dashboards`).
- `reading.py`: reads the panels' queries back out of dashboard JSON (report, tests).
- `alerts/rules.yml` + `alerts/rules_test.yml`: alert rules and their promtool unit tests.

Everything selects series by metric name and by the `tenant` (or `backend`, `member`,
`namespace`) label, never by `job` or `instance`, so it works unchanged against the
local Prometheus and the cluster's.
"""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
GENERATED_DIR = PACKAGE_DIR / "generated"
ALERT_RULES_FILE = PACKAGE_DIR / "alerts" / "rules.yml"
ALERT_TESTS_FILE = PACKAGE_DIR / "alerts" / "rules_test.yml"

# The per-tenant dashboard template holds this where the tenant name goes (uid, title,
# label matchers); Terraform renders it with replace(file(...), "__TENANT__", name).
TENANT_PLACEHOLDER = "__TENANT__"
