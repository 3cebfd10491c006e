"""Backend clients: one OpenAI-compatible client per endpoint, grouped into pools.

The OpenAI backend is a pool of one member (the openai SDK) without active health
checks; the vLLM backend is a pool of N members (plain httpx) with health checks.
"""

from llm_common.openai_client import (
    ChatStream,
    HttpxClient,
    OpenAICompatibleClient,
    SdkClient,
    UpstreamRejected,
    UpstreamReply,
    UpstreamUnavailable,
)
from llm_gateway.backends.pool import BackendPool, PoolMember

__all__ = [
    "BackendPool",
    "ChatStream",
    "HttpxClient",
    "OpenAICompatibleClient",
    "PoolMember",
    "SdkClient",
    "UpstreamRejected",
    "UpstreamReply",
    "UpstreamUnavailable",
]
