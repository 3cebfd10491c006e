"""KnowledgeBase: a tenant's documents in, relevant chunks out; vectors come from the gateway."""

from __future__ import annotations

from collections.abc import Callable
from itertools import islice

import numpy as np

from app.knowledge.chunking import iter_chunks
from app.knowledge.store import Document, EmbeddingMismatch, EmbeddingSpace, Hit, KnowledgeStore
from llm_common.errors import ApiError

EMBEDDING_BATCH = 32  # inputs per /v1/embeddings call: well under the gateway's body limit
Embed = Callable[[list[str]], tuple[str, list[list[float]]]]  # texts -> (model, one vector per text)


class KnowledgeBase:
    def __init__(
        self,
        store: KnowledgeStore,
        embed: Embed,
        *,
        top_k: int,
        min_score: float,
        chunk_words: int,
        overlap_words: int,
        max_chunks: int,
    ):
        self.store = store
        self._embed = embed
        self._top_k = top_k
        self._min_score = min_score
        self._chunk_words = chunk_words
        self._overlap_words = overlap_words
        self._max_chunks = max_chunks

    def add_document(self, title: str, text: str) -> Document:
        """Chunk, embed and store a document; refused (413) before any embedding if it makes too many chunks."""
        chunks = list(islice(iter_chunks(text, self._chunk_words, self._overlap_words), self._max_chunks + 1))
        if not chunks:
            raise ApiError(400, "document: has no text to index (only headings or whitespace)", code="empty_document")
        if len(chunks) > self._max_chunks:
            raise ApiError(
                413,
                f"document: makes more than {self._max_chunks} chunks (max_chunks_per_document); "
                "split it into several documents",
                code="document_too_many_chunks",
            )
        # The title travels with every chunk into the model: a question often names the subject.
        space, vectors = self._vectors(chunks, prefix=f"{title}\n")
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
            raise ApiError(
                409, f"knowledge: {error}; ingest the documents again", code="embedding_model_changed"
            ) from None

    def _vectors(self, texts: list[str], prefix: str = "") -> tuple[EmbeddingSpace, np.ndarray]:
        """Unit vectors for `prefix + text` of each text, asked from the gateway in batches. Each batch
        becomes float32 at once, into one array: no list of Python floats for the whole document
        (24 bytes a number), and no second copy of the texts."""
        model, vectors = "", None
        for start in range(0, len(texts), EMBEDDING_BATCH):
            model, rows = self._embed([prefix + text for text in texts[start : start + EMBEDDING_BATCH]])
            try:
                batch = np.asarray(rows, dtype=np.float32)
            except (ValueError, TypeError):
                batch = None
            if (
                batch is None
                or batch.ndim != 2
                or len(batch) != min(EMBEDDING_BATCH, len(texts) - start)
                or batch.shape[1] == 0
                or (vectors is not None and batch.shape[1] != vectors.shape[1])
            ):
                raise ApiError(502, "the gateway's embeddings did not match the inputs", code="bad_gateway_answer")
            if vectors is None:
                vectors = np.empty((len(texts), batch.shape[1]), dtype=np.float32)
            vectors[start : start + len(batch)] = batch
        if vectors is None:
            raise ApiError(502, "the gateway's embeddings did not match the inputs", code="bad_gateway_answer")
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return EmbeddingSpace(model, vectors.shape[1]), vectors
