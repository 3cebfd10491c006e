"""Local mode: the whole platform on one machine, driven by the same tenant specs as the cluster.

Starts (in order) Redis (the gateway's rate limit and budget counters), the model servers of the
catalogue's cpu models (tenantctl/local/catalogue.py: by default SmolLM2-135M-Instruct, Gemma 3 270M
and the all-MiniLM-L6-v2 embedding model), the shared gateway, one proxy per tenant, Alertmanager
(routing each tenant's alerts to the receivers in its spec, alertmanager.py) and Prometheus scraping
them all with the alert rules loaded and sending alerts to Alertmanager; waits until each is healthy;
and stops them all, in reverse order, however we exit. The usage ledger is a SQLite file in the
run directory unless `ledger_url` names another (e.g. PostgreSQL).
Each tenant's knowledge index lives in `<run dir>/knowledge/<tenant>/` and
outlives the run. `tenantctl up` keeps the children running (supervisor.py);
tenantctl serves their restart counters on a loopback port the local Prometheus scrapes.

Private by default: the run directory is 0700 and every file in it 0600 (configs holding
keys, the ledger, knowledge, logs; children run with umask 077). Redis requires a password
that only the gateway's config holds; the model servers listen on loopback only and require
an API key that only the gateway's config holds. A tenant whose spec lists no
`admin_key_sha256` gets an admin key generated once into `<run dir>/admin-keys/<tenant>.key`,
which `tenantctl ingest|documents|forget` send.

The configs each service gets are rendered in configs.py, prometheus.py and alertmanager.py; the
processes are built in launchers.py; what a running platform leaves for other commands (its URLs,
the generated admin keys) is in state.py.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server

from alert_config_sync.routing import PlatformAlerts
from dashboards import ALERT_RULES_FILE
from llm_gateway.auth import generate_gateway_key
from tenant_spec import TenantSpec
from tenantctl.local import launchers
from tenantctl.local.alertmanager import local_alertmanager_config
from tenantctl.local.catalogue import check_specs, load_local_catalogue, served_locally
from tenantctl.local.configs import assign_ports, gateway_config, proxy_config, tenant_controls
from tenantctl.local.prometheus import ScrapeTargets, prometheus_config
from tenantctl.local.state import LEDGER_FILE, local_admin_key, remove_state, write_state
from tenantctl.local.supervisor import ChildMetrics, RestartPolicy, Supervisor
from tenantctl.processes import ManagedProcess, free_port, port_is_free, private_directory

LOOPBACK = "127.0.0.1"  # Redis and the model servers never listen elsewhere
Progress = Callable[[str], None]


class PortInUse(RuntimeError):
    """A port local mode needs is taken by another process."""


@dataclass
class LocalSettings:
    run_dir: Path
    host: str = "127.0.0.1"
    gateway_port: int = 8080
    first_model_port: int | None = 8000  # the model servers take ports from here upward; None: any free ones
    first_tenant_port: int = 5002
    prometheus_port: int | None = 9090  # None: no Prometheus
    redis_port: int = 6380  # not 6379: a system Redis may hold that one
    ledger_url: str | None = None  # None: sqlite:///<run_dir>/ledger.sqlite3
    scrape_interval: str = "15s"
    catalogue_file: Path | None = None  # None: the default catalogue (catalogue.DEFAULT_CATALOGUE)
    model_endpoints: dict[str, list[str]] = field(default_factory=dict)  # models served elsewhere: name -> URLs
    workers: int = 2
    startup_timeout: float = 180.0
    metrics_port: int = 0  # tenantctl's own /metrics (child restarts); 0: a free port
    alertmanager_port: int | None = 9093  # None: no Alertmanager (also none without Prometheus)
    platform_alerts: PlatformAlerts = field(default_factory=PlatformAlerts)  # the platform's receivers
    alert_rules_file: Path = ALERT_RULES_FILE  # tests load copies with shorter timings


@dataclass(frozen=True)
class TenantEndpoint:
    name: str
    display_name: str
    url: str
    models: list[str]  # the catalogue models it may use, its default first


def openai_key_configured(environ: Mapping[str, str]) -> bool:
    return bool(environ.get("OPENAI_API_KEY", "").strip() or environ.get("OPENAI_API_KEY_FILE"))


class LocalPlatform:
    def __init__(self, specs: list[TenantSpec], settings: LocalSettings, environ: Mapping[str, str] = os.environ):
        """CatalogueError when the catalogue is not valid or a spec names a model it does not have."""
        self.specs = specs
        self.settings = settings
        self.environ = environ
        self.catalogue = load_local_catalogue(settings.catalogue_file, openai_key_configured(environ))
        self.catalogue_warnings = check_specs(specs, self.catalogue)
        self.model_servers = self._model_servers()
        self.processes: list[ManagedProcess] = []
        self.endpoints: list[TenantEndpoint] = []
        # Fresh per run, never written to logs; each only in the configs (0600) of those that need it.
        self.keys = {spec.name: generate_gateway_key() for spec in specs}
        self.redis_password = secrets.token_urlsafe(32)
        self.model_api_key = "mk-" + secrets.token_urlsafe(32)
        self.admin_keys: dict[str, str] = {}  # generated admin keys, for tenants whose spec lists none
        self.metrics_registry = CollectorRegistry(auto_describe=True)
        self.child_metrics = ChildMetrics(self.metrics_registry)
        self._metrics_server = None

    @property
    def gateway_url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.gateway_port}"

    @property
    def redis_url(self) -> str:
        return launchers.redis_url(LOOPBACK, self.settings.redis_port, self.redis_password)

    @property
    def metrics_url(self) -> str | None:
        """tenantctl's own /metrics (child restarts), once started."""
        if self._metrics_server is None:
            return None
        return f"http://{LOOPBACK}:{self._metrics_server.server_port}"

    @property
    def ledger_url(self) -> str:
        return self.settings.ledger_url or f"sqlite:///{(self.settings.run_dir / LEDGER_FILE).resolve()}"

    @property
    def prometheus_url(self) -> str | None:
        port = self.settings.prometheus_port
        return None if port is None else f"http://{self.settings.host}:{port}"

    @property
    def alertmanager_url(self) -> str | None:
        port = self.settings.alertmanager_port
        if port is None or self.settings.prometheus_port is None:
            return None
        return f"http://{self.settings.host}:{port}"

    def _model_servers(self) -> dict[str, list[int]]:
        """The local model servers to start: catalogue model -> the port of each replica."""
        port = self.settings.first_model_port
        servers = {}
        for name, replicas in served_locally(self.catalogue, self.settings.model_endpoints).items():
            if port is None:
                servers[name] = [free_port(LOOPBACK) for _ in range(replicas)]
                continue
            servers[name] = list(range(port, port + replicas))
            port += replicas
        return servers

    def _pools(self) -> dict[str, dict]:
        """Where the gateway finds each self-hosted model: our servers, or the endpoints given for it."""
        pools = {name: {"endpoints": urls} for name, urls in self.settings.model_endpoints.items()}
        for name, ports in self.model_servers.items():
            pools[name] = {
                # Ours: they start and stop with us, so they are checked often.
                "endpoints": [f"http://{LOOPBACK}:{port}" for port in ports],
                "api_key": self.model_api_key,
                "health_path": launchers.EMBEDDED_MODEL_HEALTH_PATH,
                "health_interval_seconds": 2.0,
                "eject_cooldown_seconds": 5.0,
            }
        return pools

    def model_urls(self, model: str | None = None) -> list[str]:
        """The servers of `model` (a catalogue name), or of every self-hosted model."""
        pools = self._pools()
        return [url for name, pool in pools.items() if model in (None, name) for url in pool["endpoints"]]

    def knowledge_dir(self, tenant: str) -> Path:
        return self.settings.run_dir / "knowledge" / tenant

    def _openai_environment(self) -> dict[str, str]:
        return {key: value for key, value in self.environ.items() if key.startswith("OPENAI_")}

    def check_ports_free(self, tenant_ports: Mapping[str, int]) -> None:
        """Refuse to start on a taken port: a health check could otherwise reach the other server."""
        s = self.settings
        wanted = {
            "gateway": s.gateway_port,
            "redis": s.redis_port,
            **{f"model {name}": port for name, ports in self.model_servers.items() for port in ports},
            **{f"tenant {name}": port for name, port in tenant_ports.items()},
        }
        if s.metrics_port:
            wanted["tenantctl metrics"] = s.metrics_port
        if s.prometheus_port is not None:
            wanted["prometheus"] = s.prometheus_port
        if self.alertmanager_url is not None:
            wanted["alertmanager"] = s.alertmanager_port
        taken = [f"{what} port {port}" for what, port in wanted.items() if not port_is_free(s.host, port)]
        if taken:
            raise PortInUse(
                f"already in use: {', '.join(taken)} (another `tenantctl up`? choose other ports "
                "with --gateway-port, --first-model-port, --prometheus-port, --alertmanager-port, "
                "--redis-port or the spec's local_port)"
            )

    def start(self, progress: Progress = lambda message: None) -> list[TenantEndpoint]:
        s = self.settings
        ports = assign_ports(self.specs, s.first_tenant_port)
        self.check_ports_free(ports)
        private_directory(s.run_dir)
        alertmanager_config = (
            local_alertmanager_config(self.specs, s.platform_alerts, s.run_dir, catalogue=self.catalogue)
            if self.alertmanager_url
            else None
        )  # a spec error before anything starts
        self.admin_keys = {
            spec.name: local_admin_key(s.run_dir, spec.name) for spec in self.specs if not spec.admin_key_sha256
        }
        try:
            self._metrics_server, _ = start_http_server(s.metrics_port, LOOPBACK, registry=self.metrics_registry)
            self._launch(
                launchers.redis_server(s.redis_port, s.run_dir, password=self.redis_password, host=LOOPBACK), progress
            )
            self._launch_model_servers(progress)
            controls = tenant_controls(self.redis_url, self.ledger_url)
            models = self.catalogue.model_dump(mode="json")["models"]
            self._launch(
                launchers.gateway(
                    gateway_config(self.specs, self.keys, models, self._pools(), controls),
                    s.gateway_port,
                    s.run_dir,
                    host=s.host,
                    workers=s.workers,
                    extra_env=self._openai_environment(),
                ),
                progress,
            )
            for spec in self.specs:
                config = proxy_config(
                    spec,
                    self.keys[spec.name],
                    self.gateway_url + "/v1",
                    self.knowledge_dir(spec.name),
                    admin_key=self.admin_keys.get(spec.name),
                )
                self._launch(
                    launchers.tenant_proxy(config, ports[spec.name], s.run_dir, host=s.host, workers=s.workers),
                    progress,
                )
                self.endpoints.append(
                    TenantEndpoint(
                        spec.name, spec.display_name, f"http://{s.host}:{ports[spec.name]}", self._models_of(spec)
                    )
                )
            if alertmanager_config is not None:
                self._launch(
                    launchers.alertmanager(alertmanager_config, s.alertmanager_port, s.run_dir, host=s.host), progress
                )
            if s.prometheus_port is not None:
                config = prometheus_config(
                    self._scrape_targets(), s.scrape_interval, self.alertmanager_url, s.alert_rules_file
                )
                self._launch(launchers.prometheus(config, s.prometheus_port, s.run_dir, host=s.host), progress)
        except BaseException:
            self.stop()
            raise
        self._write_state()
        return self.endpoints

    def _launch_model_servers(self, progress: Progress) -> None:
        for name, ports in self.model_servers.items():
            entry = self.catalogue.models[name]
            for replica, port in enumerate(ports):
                process = launchers.catalogue_model_server(
                    name if len(ports) == 1 else f"{name}-{replica}",
                    entry.source,
                    entry.served_name or name,
                    port,
                    self.settings.run_dir,
                    kind=entry.kind,
                    context_length=entry.context_length,
                    host=LOOPBACK,
                    api_key=self.model_api_key,
                )
                self._launch(process, progress, waiting=f"loading {name} ({entry.kind} model, CPU)")

    def _models_of(self, spec: TenantSpec) -> list[str]:
        default = self.catalogue.resolve(spec.models.default_model)
        entitled = self.catalogue.entitled(spec.models.allowed)
        return [default, *(name for name in entitled if name != default)]

    def _scrape_targets(self) -> ScrapeTargets:
        return ScrapeTargets(
            gateway=self.gateway_url,
            tenant_proxies=[e.url for e in self.endpoints],
            model_servers=self.model_urls(),
            tenantctl=self.metrics_url,
        )

    def _launch(self, process: ManagedProcess, progress: Progress, waiting: str | None = None) -> None:
        progress(f"starting {process.name} (log: {process.log_path})")
        process.start()
        self.processes.append(process)
        announced = [0.0]

        def on_wait(elapsed: float) -> None:
            if elapsed - announced[0] >= 5:
                announced[0] = elapsed
                progress(f"  … {waiting or 'waiting for ' + process.name} ({elapsed:.0f}s)")

        process.wait_healthy(self.settings.startup_timeout, on_wait)
        self.child_metrics.started(process.name)

    def process(self, name: str) -> ManagedProcess:
        return next(p for p in self.processes if p.name == name)

    def supervisor(self, log: Callable[[str], None], policy: RestartPolicy | None = None) -> Supervisor:
        """Restarts children that exit (call its `check()` from the main thread, see supervisor.py)."""
        policy = policy or RestartPolicy(startup_timeout=self.settings.startup_timeout)
        return Supervisor(self.processes, self.child_metrics, log, policy)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server.server_close()
            self._metrics_server = None
        remove_state(self.settings.run_dir)

    def _write_state(self) -> None:
        state = {
            "gateway_url": self.gateway_url,
            "prometheus_url": self.prometheus_url,
            "alertmanager_url": self.alertmanager_url,
            "metrics_url": self.metrics_url,
            "ledger_url": self.ledger_url,
            "tenants": [asdict(e) for e in self.endpoints],
        }
        write_state(self.settings.run_dir, state)
