"""Backend clients: one OpenAI-compatible client per endpoint, grouped into pools.

The OpenAI backend is a pool of one member without active health checks; the
vLLM backend is a pool of N members with health checks. Both use the openai SDK.
"""

from llm_common.openai_client import (
    ChatStream,
    OpenAICompatibleClient,
    UpstreamRejected,
    UpstreamReply,
    UpstreamUnavailable,
)
from llm_gateway.backends.pool import BackendPool, PoolMember

__all__ = [
    "BackendPool",
    "ChatStream",
    "OpenAICompatibleClient",
    "PoolMember",
    "UpstreamRejected",
    "UpstreamReply",
    "UpstreamUnavailable",
]
