"""Backend clients: one asynchronous OpenAI-compatible client per endpoint, grouped into pools.

The OpenAI backend is a pool of one member (the openai SDK's AsyncOpenAI) without active health
checks; the vLLM backend is a pool of N members (plain httpx) with health checks.
"""

from llm_common.openai_client import UpstreamRejected, UpstreamReply, UpstreamUnavailable
from llm_gateway.backends.clients import (AsyncChatStream, AsyncHttpxClient, AsyncOpenAICompatibleClient,
                                          AsyncSdkClient)
from llm_gateway.backends.pool import BackendPool, PoolMember

__all__ = [
    "AsyncChatStream",
    "AsyncHttpxClient",
    "AsyncOpenAICompatibleClient",
    "AsyncSdkClient",
    "BackendPool",
    "PoolMember",
    "UpstreamRejected",
    "UpstreamReply",
    "UpstreamUnavailable",
]
