"""Gunicorn settings of the gateway: those both services share (llm_common/gunicorn_conf.py), with
uvicorn workers instead of threads. Each worker runs one event loop (uvloop, httptools) that holds
every request it accepted, a stream of minutes included, so a worker's streams are bounded by
memory and the backends, not by a thread count. Use `-c python:llm_gateway.gunicorn_conf`."""

from llm_common.gunicorn_conf import *  # noqa: F401,F403 (the shared settings and hooks)

worker_class = "uvicorn_worker.UvicornWorker"
