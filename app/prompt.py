"""The tenant's system prompt is always the first message, and callers cannot replace it.

A caller's own `system`/`developer` messages are refused rather than dropped
or merged: silently losing them would surprise the caller, and accepting them
would let one override the tenant's instructions. The Responses API's `instructions`
are the one exception: clients such as the OpenAI Agents SDK always send them, so
they go in a system message of their own *below* the tenant's prompt, and the
tenant's guardrails check them like everything else the caller sent.
"""

from __future__ import annotations

from llm_common.errors import Refusal

PRIVILEGED_ROLES = ("system", "developer")


def with_tenant_prompt(system_prompt: str, messages: list[dict], instructions: str | None = None) -> list[dict]:
    """The tenant's prompt, then the caller's `instructions` (the Responses API's) when there are any, in a
    system message of their own below it, then the caller's messages."""
    for index, message in enumerate(messages):
        if message.get("role") in PRIVILEGED_ROLES:
            raise Refusal(
                400,
                f"messages.{index}.role: '{message['role']}' messages are not accepted; "
                "this tenant's system prompt is fixed by the platform",
                reason="system_prompt_locked",
            )
    caller_instructions = [{"role": "system", "content": instructions}] if instructions is not None else []
    return [{"role": "system", "content": system_prompt}, *caller_instructions, *messages]


def ask_messages(system_prompt: str, question: str, history: list[dict]) -> list[dict]:
    """Messages for `/ask`: tenant prompt, earlier turns, then the question."""
    return with_tenant_prompt(system_prompt, [*history, {"role": "user", "content": question}])
