"""Retrieved chunks -> the system prompt of a grounded answer, and that answer's citations.

The tenant's own system prompt stays first and unchanged; the excerpts follow it in the
same system message, numbered, so the model can refer to them and the caller can match
its `citations` (same order) to the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.knowledge.store import Hit

SNIPPET_CHARACTERS = 200


@dataclass(frozen=True)
class Grounding:
    system_prompt: str
    citations: list[dict] = field(default_factory=list)


def ground(system_prompt: str, hits: list[Hit]) -> Grounding:
    if not hits:
        return Grounding(system_prompt)
    excerpts = "\n\n".join(f"[{number}] {hit.title}\n{hit.text}" for number, hit in enumerate(hits, start=1))
    prompt = (f"{system_prompt}\n\nExcerpts from your organisation's documents that may answer the question. "
              f"Use them when they are relevant and name the [number] you used.\n\n{excerpts}")
    return Grounding(prompt, [citation(hit) for hit in hits])


def citation(hit: Hit) -> dict:
    snippet = hit.text
    if len(snippet) > SNIPPET_CHARACTERS:
        snippet = snippet[:SNIPPET_CHARACTERS].rsplit(" ", 1)[0] + " …"
    return {"document_id": hit.document_id, "title": hit.title, "chunk_id": hit.chunk_id,
            "score": round(hit.score, 4), "snippet": snippet}
