"""Backend extensions: request fields beyond OpenAI's that a tenant may allow (`allowed_request_extensions`).

The gateway forwards an allowed extension only after checking it against its type here
(llm_common/request_contract.py); a field in NEVER_ACCEPTED is refused whatever a spec says.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StrictFloat, StrictInt, StrictStr

MAX_TOKEN_ID = 2**31 - 1
Number = StrictFloat  # accepts JSON integers too (the caller's value is forwarded as sent), not booleans

_Probability = Annotated[Number, Field(ge=0, le=1)]
_Pattern = Annotated[StrictStr, Field(min_length=1, max_length=4096)]
_Grammar = Annotated[StrictStr, Field(min_length=1, max_length=65536)]

# What a tenant may allow (`allowed_request_extensions`), with the type each must have. All are
# sampling or decoding knobs of vLLM or llama.cpp's server; none changes how the prompt is rendered.
ALLOWABLE_EXTENSIONS: dict[str, Any] = {
    "top_k": Annotated[StrictInt, Field(ge=-1, le=10_000)],
    "min_p": _Probability,
    "typical_p": _Probability,
    "repetition_penalty": Annotated[Number, Field(gt=0, le=2)],
    "repeat_penalty": Annotated[Number, Field(gt=0, le=2)],
    "length_penalty": Annotated[Number, Field(ge=-10, le=10)],
    "min_tokens": Annotated[StrictInt, Field(ge=0, le=10**9)],
    "ignore_eos": StrictBool,
    "skip_special_tokens": StrictBool,
    "spaces_between_special_tokens": StrictBool,
    "include_stop_str_in_output": StrictBool,
    "stop_token_ids": Annotated[list[Annotated[StrictInt, Field(ge=0, le=MAX_TOKEN_ID)]], Field(max_length=64)],
    "guided_json": dict[str, Any] | _Grammar,
    "guided_regex": _Pattern,
    "guided_choice": Annotated[list[Annotated[StrictStr, Field(max_length=4096)]], Field(min_length=1, max_length=256)],
    "guided_grammar": _Grammar,
    "guided_decoding_backend": Annotated[StrictStr, Field(pattern=r"^[a-z0-9_:-]{1,64}$")],
    "guided_whitespace_pattern": _Pattern,
    "grammar": _Grammar,
    "mirostat_mode": Literal[0, 1, 2],
    "mirostat_tau": Annotated[Number, Field(ge=0, le=100)],
    "mirostat_eta": Annotated[Number, Field(ge=0, le=1)],
}
# Known fields that are never forwarded, whatever a spec says, and why.
NEVER_ACCEPTED: dict[str, str] = {
    **{
        name: "can change or drop the tenant's system prompt, so it is never accepted"
        for name in (
            "chat_template",
            "chat_template_kwargs",
            "add_generation_prompt",
            "continue_final_message",
            "add_special_tokens",
            "documents",
            "echo",
            "mm_processor_kwargs",
            "prompt",
        )
    },
    **{
        name: "multiplies the work of one request, so it is never accepted"
        for name in ("best_of", "use_beam_search", "prompt_logprobs")
    },
    "logits_processors": "runs code on the backend, so it is never accepted",
    "functions": "deprecated by OpenAI: use tools",
    "function_call": "deprecated by OpenAI: use tool_choice",
    "dimensions": "the platform's embedding model has fixed dimensions",
}


def check_allowed_extensions(names: list[str]) -> list[str]:
    """Every name must be an allowable extension, listed once."""
    for name in names:
        if name in NEVER_ACCEPTED:
            raise ValueError(f"'{name}' is never allowed: {NEVER_ACCEPTED[name]}")
        if name not in ALLOWABLE_EXTENSIONS:
            known = ", ".join(sorted(ALLOWABLE_EXTENSIONS))
            raise ValueError(f"'{name}' is not a known backend extension; known: {known}")
    if len(set(names)) != len(names):
        raise ValueError("each extension may be listed once")
    return names
