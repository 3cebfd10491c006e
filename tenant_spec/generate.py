"""Write what is generated from the spec package: the TenantRoute CRD's schema and the spec reference.

python -m tenant_spec.generate          # rewrite both files
python -m tenant_spec.generate --check  # exit 1 if either differs (tests/tenant_spec/test_generated.py)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tenant_spec.crd import tenant_route_schema
from tenant_spec.reference import spec_reference

REPO_ROOT = Path(__file__).resolve().parents[1]
TENANT_ROUTE_SCHEMA = REPO_ROOT / "shared-infrastructure" / "platform" / "tenant_route_schema.json"
SPEC_REFERENCE = REPO_ROOT / "docs" / "tenant-spec.md"


def generated_files() -> dict[Path, str]:
    return {TENANT_ROUTE_SCHEMA: json.dumps(tenant_route_schema(), indent=2) + "\n", SPEC_REFERENCE: spec_reference()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tenant_spec.generate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report files that are not up to date")
    args = parser.parse_args(argv)
    stale = [
        path
        for path, text in generated_files().items()
        if not path.is_file() or path.read_text(encoding="utf-8") != text
    ]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(REPO_ROOT)} is not up to date: run python -m tenant_spec.generate")
        return 1 if stale else 0
    for path in stale:
        path.write_text(generated_files()[path], encoding="utf-8")
        print(f"wrote {path.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
