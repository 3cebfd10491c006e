"""Backend clients: one asynchronous OpenAI-compatible client per endpoint, grouped into pools.

The OpenAI backend is a pool of one member (the openai SDK's AsyncOpenAI) without active health
checks; the vLLM backend is a pool of N members (plain HTTP, aiohttp) with health checks.
"""

from llm_common.openai_client import UpstreamRejected, UpstreamReply, UpstreamUnavailable
from llm_gateway.backends.clients import AiohttpClient, AsyncChatStream, AsyncOpenAICompatibleClient, AsyncSdkClient
from llm_gateway.backends.pool import BackendPool, PoolMember

__all__ = [
    "AiohttpClient",
    "AsyncChatStream",
    "AsyncOpenAICompatibleClient",
    "AsyncSdkClient",
    "BackendPool",
    "PoolMember",
    "UpstreamRejected",
    "UpstreamReply",
    "UpstreamUnavailable",
]
