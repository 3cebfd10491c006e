"""Log format for both services; per-request client logs (httpx) only when something is wrong.

Service logs are text lines carrying the request id they were written for; the per-request
lines of `llm_common.tracing` are JSON, one object per line, nothing around it.
"""

import logging
import sys

from llm_common.tracing import REQUEST_LOGGER, RequestIdFilter


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(RequestIdFilter())
    for noisy in ("httpx", "httpcore", "openai"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    requests = logging.getLogger(REQUEST_LOGGER)
    if not requests.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        requests.addHandler(handler)
    requests.setLevel(logging.INFO)
    requests.propagate = False
