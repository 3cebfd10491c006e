"""KnowledgeBase: a tenant's documents in, relevant chunks out; vectors come from the gateway."""

from __future__ import annotations

from typing import Callable

import numpy as np

from app.knowledge.chunking import split_into_chunks
from app.knowledge.store import Document, EmbeddingMismatch, EmbeddingSpace, Hit, KnowledgeStore
from llm_common.errors import ApiError

EMBEDDING_BATCH = 32  # inputs per /v1/embeddings call: well under the gateway's body limit
Embed = Callable[[list[str]], tuple[str, list[list[float]]]]  # texts -> (model, one vector per text)


class KnowledgeBase:
    def __init__(self, store: KnowledgeStore, embed: Embed, *, top_k: int, min_score: float,
                 chunk_words: int, overlap_words: int):
        self.store = store
        self._embed = embed
        self._top_k = top_k
        self._min_score = min_score
        self._chunk_words = chunk_words
        self._overlap_words = overlap_words

    def add_document(self, title: str, text: str) -> Document:
        chunks = split_into_chunks(text, self._chunk_words, self._overlap_words)
        if not chunks:
            raise ApiError(400, "document: has no text to index (only headings or whitespace)", code="empty_document")
        # The title travels with every chunk into the model: a question often names the subject.
        space, vectors = self._vectors([f"{title}\n{chunk}" for chunk in chunks])
        try:
            return self.store.add_document(title, len(text.encode("utf-8")), chunks, vectors, space)
        except EmbeddingMismatch as error:
            raise ApiError(409, str(error), code="embedding_model_changed") from None

    def retrieve(self, question: str) -> list[Hit]:
        """What grounds an answer: up to top_k chunks at least min_score similar to the question, best first."""
        return [hit for hit in self.search(question, self._top_k) if hit.score >= self._min_score]

    def search(self, query: str, top_k: int) -> list[Hit]:
        """The top_k chunks most similar to `query`, best first, however low their score."""
        if self.store.chunk_count() == 0:
            return []  # nothing to search: no embedding call either
        space, vectors = self._vectors([query])
        stored = self.store.space()
        try:
            if stored is not None and stored != space:
                raise EmbeddingMismatch(f"index built with {stored.model}, query embedded with {space.model}")
            return self.store.search(vectors[0], top_k)
        except EmbeddingMismatch as error:
            raise ApiError(409, f"knowledge: {error}; ingest the documents again", code="embedding_model_changed") \
                from None

    def _vectors(self, texts: list[str]) -> tuple[EmbeddingSpace, np.ndarray]:
        """Unit vectors for `texts`, asked from the gateway in batches."""
        model, rows = "", []
        for start in range(0, len(texts), EMBEDDING_BATCH):
            model, batch = self._embed(texts[start:start + EMBEDDING_BATCH])
            rows.extend(batch)
        vectors = np.asarray(rows, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(texts) or vectors.shape[1] == 0:
            raise ApiError(502, "the gateway's embeddings did not match the inputs", code="bad_gateway_answer")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return EmbeddingSpace(model, vectors.shape[1]), vectors / np.maximum(norms, 1e-12)
