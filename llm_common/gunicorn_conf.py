"""Gunicorn settings shared by the gateway and the tenant proxies.

gthread workers for the proxies (Flask): a streamed answer holds a thread, not a whole worker;
GUNICORN_THREADS threads per worker. The gateway uses llm_gateway/gunicorn_conf.py, which takes
these settings and swaps in uvicorn workers.
PROMETHEUS_MULTIPROC_DIR must be set before prometheus_client is imported
anywhere (workers fork from this master), so it is set here, first thing.
"""

import os
import shutil
import tempfile

_multiproc_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(prefix="prom-multiproc-")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _multiproc_dir

bind = os.environ.get("BIND", "127.0.0.1:8080")
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "32"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "300"))
graceful_timeout = 10
keepalive = 30
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
# One control socket path is shared by every gunicorn on the host by default; we run many.
control_socket_disable = True


def on_starting(server):
    """Start from an empty metrics directory so counters of a previous run do not leak in; with
    METRICS_PORT set, also listen there (the gateway serves /metrics only on that port)."""
    shutil.rmtree(_multiproc_dir, ignore_errors=True)
    os.makedirs(_multiproc_dir, exist_ok=True)
    metrics_port = os.environ.get("METRICS_PORT")
    if metrics_port:
        host = server.cfg.bind[0].rsplit(":", 1)[0]
        server.cfg.set("bind", [*server.cfg.bind, f"{host}:{metrics_port}"])


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
