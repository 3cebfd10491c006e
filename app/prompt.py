"""The tenant's system prompt is always the first message, and callers cannot replace it.

A caller's own `system`/`developer` messages are refused rather than dropped
or merged: silently losing them would surprise the caller, and accepting them
would let one override the tenant's instructions.
"""

from __future__ import annotations

from llm_common.errors import Refusal

PRIVILEGED_ROLES = ("system", "developer")


def with_tenant_prompt(system_prompt: str, messages: list[dict]) -> list[dict]:
    for index, message in enumerate(messages):
        if message.get("role") in PRIVILEGED_ROLES:
            raise Refusal(
                400,
                f"messages.{index}.role: '{message['role']}' messages are not accepted; "
                "this tenant's system prompt is fixed by the platform",
                reason="system_prompt_locked",
            )
    return [{"role": "system", "content": system_prompt}, *messages]


def ask_messages(system_prompt: str, question: str, history: list[dict]) -> list[dict]:
    """Messages for `/ask`: tenant prompt, earlier turns, then the question."""
    return with_tenant_prompt(system_prompt, [*history, {"role": "user", "content": question}])
