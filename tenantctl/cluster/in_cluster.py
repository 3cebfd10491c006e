"""Doing things from inside the cluster: a short-lived Pod runs a batch of HTTP requests and TCP
connection attempts and prints what happened, as JSON, to its log.

NetworkPolicies are about which Pod may reach which: only a Pod in the right namespace with the
right labels proves them. The Pod runs the platform image (it has Python and httpx), meets the
"restricted" Pod Security profile of tenant namespaces, and is deleted once its log is read.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

from kubernetes import client
from kubernetes.client.rest import ApiException

from tenantctl.waiting import wait_for

# Runs inside the Pod: PROBES is a JSON list of {"id", "connect": "host:port"} or
# {"id", "method", "url", "json"?, "headers"?}, each with "retry_seconds" (how long a refused or timed-out
# connection is tried again); prints one JSON document.
PROBE_SCRIPT = r"""
import json, os, socket, time
import httpx

def retried(attempt, probe, errors):
    deadline = time.monotonic() + probe.get("retry_seconds", 0)
    while True:
        try:
            return attempt()
        except errors:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)

def connect(probe):
    host, port = probe["connect"].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=probe.get("timeout", 3)):
        return {"connected": True}

def request(probe):
    response = httpx.request(probe.get("method", "GET"), probe["url"], json=probe.get("json"),
                             headers=probe.get("headers"), timeout=probe.get("timeout", 120))
    return {"status": response.status_code, "text": response.text}

results = {}
for probe in json.loads(os.environ["PROBES"]):
    started = time.monotonic()
    try:
        if "connect" in probe:
            results[probe["id"]] = retried(lambda: connect(probe), probe, OSError)
        else:
            results[probe["id"]] = retried(lambda: request(probe), probe, (httpx.ConnectError, httpx.ConnectTimeout))
    except Exception as error:
        results[probe["id"]] = {"connected": False, "error": f"{type(error).__name__}: {error}"}
    results[probe["id"]]["seconds"] = round(time.monotonic() - started, 3)
print("PROBE-RESULTS " + json.dumps(results))
"""


@dataclass
class Probe:
    """What one probe Pod does: `connect` attempts and HTTP `requests`, each under an id."""

    probes: list[dict] = field(default_factory=list)

    def connect(self, probe_id: str, host: str, port: int, timeout: float = 3, retry_seconds: float = 0) -> Probe:
        """A TCP connection attempt; `retry_seconds` for one that must succeed: the NetworkPolicy
        enforcer admits a new Pod's address a moment after the Pod starts (refusing it until then), and
        on a busy node that moment can come after the Pod's first try."""
        self.probes.append(
            {"id": probe_id, "connect": f"{host}:{port}", "timeout": timeout, "retry_seconds": retry_seconds}
        )
        return self

    def request(
        self, probe_id: str, method: str, url: str, timeout: float = 120, retry_seconds: float = 60, **options
    ) -> Probe:
        """An HTTP request; its connection is tried again for `retry_seconds`, as for `connect`."""
        self.probes.append(
            {
                "id": probe_id,
                "method": method,
                "url": url,
                "timeout": timeout,
                "retry_seconds": retry_seconds,
                **options,
            }
        )
        return self


class PodRunner:
    """Runs probe Pods through the Kubernetes API as the cluster admin."""

    def __init__(self, api: client.ApiClient, image: str):
        self.core = client.CoreV1Api(api)
        self.image = image

    def run(
        self,
        namespace: str,
        probe: Probe,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        timeout: float = 300,
    ) -> dict[str, dict]:
        name = f"probe-{uuid.uuid4().hex[:8]}"
        self.core.create_namespaced_pod(namespace, self.pod(name, probe, labels, annotations))
        try:
            self._wait_finished(namespace, name, timeout)
            log = self.core.read_namespaced_pod_log(name, namespace)
        finally:
            try:
                self.core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
            except ApiException:
                pass
        line = next((line for line in log.splitlines() if line.startswith("PROBE-RESULTS ")), None)
        assert line is not None, f"probe Pod {namespace}/{name} printed no results:\n{log[-3000:]}"
        return json.loads(line.removeprefix("PROBE-RESULTS "))

    def pod(
        self, name: str, probe: Probe, labels: dict[str, str] | None, annotations: dict[str, str] | None
    ) -> client.V1Pod:
        return client.V1Pod(
            metadata=client.V1ObjectMeta(name=name, labels=labels or {}, annotations=annotations or {}),
            spec=client.V1PodSpec(
                restart_policy="Never",
                automount_service_account_token=False,
                security_context=client.V1PodSecurityContext(
                    run_as_non_root=True,
                    run_as_user=10001,
                    seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault"),
                ),
                containers=[
                    client.V1Container(
                        name="probe",
                        image=self.image,
                        command=["python3", "-c", PROBE_SCRIPT],
                        env=[client.V1EnvVar(name="PROBES", value=json.dumps(probe.probes))],
                        security_context=client.V1SecurityContext(
                            allow_privilege_escalation=False,
                            read_only_root_filesystem=True,
                            capabilities=client.V1Capabilities(drop=["ALL"]),
                        ),
                        resources=client.V1ResourceRequirements(
                            requests={"cpu": "10m", "memory": "64Mi"}, limits={"cpu": "500m", "memory": "256Mi"}
                        ),
                    )
                ],
            ),
        )

    def _wait_finished(self, namespace: str, name: str, timeout: float) -> None:
        wait_for(
            lambda: self.core.read_namespaced_pod(name, namespace).status.phase in ("Succeeded", "Failed"),
            timeout=timeout,
            what=f"probe Pod {namespace}/{name} to finish",
        )


# A stand-in for an ingress controller: forwards /<tenant>/<path> to that tenant's proxy Service.
RELAY_SCRIPT = r"""
import http.server, socketserver
import httpx
HOP_BY_HOP = {"connection", "transfer-encoding", "keep-alive", "content-length", "host"}
NOT_PASSED = {"content-encoding", "server", "date"}  # the content is decoded; the relay sends its own
class Relay(http.server.BaseHTTPRequestHandler):
    def relay(self):
        tenant, _, path = self.path.lstrip("/").partition("/")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        try:
            upstream = httpx.request(self.command, f"http://tenant-proxy.{tenant}.svc.cluster.local:8080/{path}",
                                     content=body, headers=headers, timeout=300)
            status, content = upstream.status_code, upstream.content
            passed = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP | NOT_PASSED}
        except httpx.HTTPError as error:
            status, content = 599, f"relay: {type(error).__name__}: {error}".encode()
            passed = {"Content-Type": "text/plain"}
        self.send_response(status)
        for name, value in passed.items():  # as an ingress controller does: Retry-After, X-Request-Id, ...
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)
    do_GET = do_POST = do_DELETE = relay
class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
Server(("", 8080), Relay).serve_forever()
"""


class IngressRelay:
    """A long-running Pod in the ingress controller's namespace that relays the host's requests to
    tenant proxies through their Services: the ingress path the tenants' NetworkPolicies allow."""

    def __init__(self, runner: PodRunner, namespace: str):
        self.runner = runner
        self.namespace = namespace
        self.name = f"ingress-relay-{uuid.uuid4().hex[:6]}"
        self.url: str | None = None

    def start(self, timeout: float = 120) -> IngressRelay:
        pod = self.runner.pod(self.name, Probe(), {"app.kubernetes.io/name": "ingress-relay"}, None)
        pod.spec.restart_policy = "Always"
        pod.spec.containers[0].command = ["python3", "-c", RELAY_SCRIPT]
        pod.spec.containers[0].readiness_probe = client.V1Probe(
            tcp_socket=client.V1TCPSocketAction(port=8080), period_seconds=1
        )
        self.runner.core.create_namespaced_pod(self.namespace, pod)

        def ready_ip() -> str | None:
            status = self.runner.core.read_namespaced_pod(self.name, self.namespace).status
            ready = any(c.type == "Ready" and c.status == "True" for c in status.conditions or [])
            return status.pod_ip if ready else None

        self.url = f"http://{wait_for(ready_ip, timeout=timeout, what='the ingress relay Ready')}:8080"
        return self

    def stop(self) -> None:
        try:
            self.runner.core.delete_namespaced_pod(self.name, self.namespace, grace_period_seconds=0)
        except ApiException:
            pass
