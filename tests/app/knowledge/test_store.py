"""The knowledge store on disk: real FAISS and SQLite, several processes at once (as gunicorn workers are).

Vectors here are random unit vectors: the store does not care where vectors come from.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import faiss
import numpy as np
import pytest

from app.knowledge.store import INDEX_FILE, EmbeddingMismatch, EmbeddingSpace, KnowledgeStore

SPACE = EmbeddingSpace("test-model", 16)


def unit_vectors(count: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(count, SPACE.dimensions)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def add(store: KnowledgeStore, title: str, seed: int, chunks: int = 3):
    vectors = unit_vectors(chunks, seed)
    document = store.add_document(title, 100, [f"{title} part {i}" for i in range(chunks)], vectors, SPACE)
    return document, vectors


def test_add_search_delete(tmp_path):
    store = KnowledgeStore(tmp_path)
    first, first_vectors = add(store, "first", seed=1)
    second, _ = add(store, "second", seed=2)
    hits = store.search(first_vectors[1], 2)
    assert hits[0].document_id == first.id and hits[0].text == "first part 1" and hits[0].position == 1
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert [d.id for d in store.documents()] == [first.id, second.id]
    assert store.delete_document(first.id)
    assert not store.delete_document(first.id)
    assert store.document(first.id) is None
    assert all(hit.document_id == second.id for hit in store.search(first_vectors[1], 10))
    assert store.chunk_count() == 3


def test_another_worker_sees_changes_on_its_next_search(tmp_path):
    writer, reader = KnowledgeStore(tmp_path), KnowledgeStore(tmp_path)  # two workers' views
    assert reader.search(unit_vectors(1, 0)[0], 3) == []
    document, vectors = add(writer, "doc", seed=3)
    assert reader.search(vectors[0], 1)[0].document_id == document.id
    writer.delete_document(document.id)
    assert reader.search(vectors[0], 1) == []


def _add_many(directory: str, worker: int, count: int) -> None:
    store = KnowledgeStore(Path(directory))
    for i in range(count):
        add(store, f"w{worker}-{i}", seed=1000 * worker + i, chunks=2)


@pytest.mark.e2e  # starts worker processes
def test_concurrent_writers_in_several_processes_lose_nothing(tmp_path):
    context = multiprocessing.get_context("spawn")  # like separate gunicorn workers: nothing shared in memory
    workers = [context.Process(target=_add_many, args=(str(tmp_path), worker, 8)) for worker in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(120)
        assert process.exitcode == 0
    store = KnowledgeStore(tmp_path)
    assert len(store.documents()) == 32
    assert store.chunk_count() == 64
    for worker in range(4):
        for i in range(8):
            vector = unit_vectors(2, 1000 * worker + i)[0]
            assert store.search(vector, 1)[0].title == f"w{worker}-{i}"


def test_vectors_left_without_rows_are_skipped_then_dropped(tmp_path):
    """What a crash between writing the index and committing the rows leaves behind."""
    store = KnowledgeStore(tmp_path)
    kept, kept_vectors = add(store, "kept", seed=4)
    index = faiss.read_index(str(tmp_path / INDEX_FILE))
    stray = unit_vectors(1, 5)
    index.add_with_ids(stray, np.array([9999], dtype=np.int64))
    faiss.write_index(index, str(tmp_path / INDEX_FILE))
    assert store.chunk_count() == 4
    assert all(hit.chunk_id != 9999 for hit in store.search(stray[0], 3))
    add(store, "next", seed=6)
    assert store.chunk_count() == 6  # 3 + 3, the stray vector is gone


def test_vectors_of_another_model_are_refused(tmp_path):
    store = KnowledgeStore(tmp_path)
    add(store, "doc", seed=7)
    with pytest.raises(EmbeddingMismatch, match="test-model"):
        store.add_document("other", 10, ["x"], unit_vectors(1, 8), EmbeddingSpace("other-model", 16))
    with pytest.raises(EmbeddingMismatch):
        store.search(np.ones(8, dtype=np.float32), 3)
