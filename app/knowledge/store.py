"""One tenant's knowledge on disk: a FAISS index of chunk vectors and an SQLite catalogue.

    <knowledge dir>/
      catalogue.sqlite3   documents, chunks (text, position), the embedding model and its dimensions
      chunks.faiss        IndexIDMap2(IndexFlatIP): chunk id -> unit vector, so inner product = cosine
      write.lock          held (flock) by the one writer at a time

Several gunicorn workers, each with several threads, share the directory:

- Writers take `write.lock`. A writer starts from the newest index file, changes a copy
  and replaces the file atomically (temporary file, fsync, rename): nobody ever reads a
  half-written index, and searches running on the old copy are undisturbed.
- Readers keep the index in memory and reload it when the file changed (one `stat` per
  search: inode, mtime and size).
- The two files cannot change in one atomic step, so the order is such that a reader (or
  a crash) can only ever meet vectors without catalogue rows, never rows without vectors:
  adding writes the index before it commits the rows; deleting commits the removal of the
  rows, then rewrites the index. Searches skip vectors without rows, and every write
  first drops such leftovers from the index.

The index is exact (flat): a query over 100k chunks takes milliseconds (bench/knowledge.py),
and removal is exact, which approximate graph indexes (HNSW) cannot do.

The directory is made 0700 and every file in it 0600 (SQLite gives its journal the
catalogue's mode), whatever the process umask: documents are the tenant's own.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

CATALOGUE_FILE = "catalogue.sqlite3"
INDEX_FILE = "chunks.faiss"
LOCK_FILE = "write.lock"
PRIVATE_DIRECTORY, PRIVATE_FILE = 0o700, 0o600
SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    chunk_count INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_by_document ON chunks (document_id);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class EmbeddingMismatch(Exception):
    """Vectors of another model (or size) than the one that built this index."""


@dataclass(frozen=True)
class Document:
    id: str
    title: str
    bytes: int
    chunk_count: int
    created_at: float


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    document_id: str
    title: str
    position: int
    text: str
    score: float


@dataclass(frozen=True)
class EmbeddingSpace:
    """The model whose vectors fill the index, and their size."""

    model: str
    dimensions: int


class KnowledgeStore:
    def __init__(self, directory: Path):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIRECTORY)
        if directory.stat().st_uid == os.geteuid():
            directory.chmod(PRIVATE_DIRECTORY)
        # else a volume's root mounted for us (a Pod's PersistentVolume, group-owned by its fsGroup): its mode is
        # the cluster's to set, and only its owner may change it; the files below are created 0600 either way.
        self._index_path = directory / INDEX_FILE
        self._catalogue_path = directory / CATALOGUE_FILE
        os.close(_create_private(self._catalogue_path))
        self._reload_lock = threading.Lock()
        self._index: faiss.Index | None = None
        self._loaded_signature: tuple | None = None
        with self._connect() as connection:
            # A rollback journal, not WAL: WAL needs shared memory between its users, which a
            # ReadWriteMany volume mounted by proxy replicas on several nodes does not give.
            connection.execute("PRAGMA journal_mode=DELETE")
            connection.executescript(SCHEMA)

    # --- reading ---------------------------------------------------------------------------

    def space(self) -> EmbeddingSpace | None:
        with self._connect() as connection:
            settings = dict(connection.execute("SELECT key, value FROM settings"))
        if "model" not in settings:
            return None
        return EmbeddingSpace(settings["model"], int(settings["dimensions"]))

    def chunk_count(self) -> int:
        """Vectors in the newest index (what a search would look through)."""
        index = self._current_index()
        return 0 if index is None else index.ntotal

    def search(self, vector: np.ndarray, k: int) -> list[Hit]:
        """The `k` chunks most similar to the unit `vector`, best first."""
        index = self._current_index()
        if index is None or index.ntotal == 0:
            return []
        if vector.shape[-1] != index.d:
            raise EmbeddingMismatch(f"the question's vector has {vector.shape[-1]} dimensions, the index {index.d}")
        # A few extra candidates make up for vectors whose rows are gone (see the module docstring).
        scores, ids = index.search(vector.reshape(1, -1).astype(np.float32), min(index.ntotal, k + 8))
        found = [
            (int(chunk_id), float(score)) for chunk_id, score in zip(ids[0], scores[0], strict=True) if chunk_id >= 0
        ]
        rows = self._chunk_rows([chunk_id for chunk_id, _ in found])
        hits = [Hit(chunk_id, *rows[chunk_id], score=score) for chunk_id, score in found if chunk_id in rows]
        return hits[:k]

    def document(self, document_id: str) -> Document | None:
        with self._connect() as connection:
            row = connection.execute(
                "SELECT id, title, bytes, chunk_count, created_at FROM documents WHERE id = ?", (document_id,)
            ).fetchone()
        return Document(*row) if row else None

    def documents(self) -> list[Document]:
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT id, title, bytes, chunk_count, created_at FROM documents ORDER BY created_at, id"
            ).fetchall()
        return [Document(*row) for row in rows]

    def _chunk_rows(self, chunk_ids: list[int]) -> dict[int, tuple[str, str, int, str]]:
        if not chunk_ids:
            return {}
        marks = ",".join("?" * len(chunk_ids))
        with self._connect() as connection:
            rows = connection.execute(
                f"SELECT c.id, c.document_id, d.title, c.position, c.text FROM chunks c "
                f"JOIN documents d ON d.id = c.document_id WHERE c.id IN ({marks})",
                chunk_ids,
            ).fetchall()
        return {row[0]: row[1:] for row in rows}

    # --- writing ---------------------------------------------------------------------------

    def add_document(
        self, title: str, byte_count: int, chunks: list[str], vectors: np.ndarray, space: EmbeddingSpace
    ) -> Document:
        """Store a document's chunks and their unit vectors (one row per chunk, in order)."""
        if len(chunks) != len(vectors) or not chunks:
            raise ValueError("one vector per chunk, and at least one chunk")
        document = Document(f"doc_{secrets.token_hex(12)}", title, byte_count, len(chunks), time.time())
        with self._writing() as connection:
            self._claim_space(connection, space)
            index = self._writable_index(connection, space.dimensions)
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.execute(
                    "INSERT INTO documents VALUES (?, ?, ?, ?, ?)",
                    (document.id, title, byte_count, len(chunks), document.created_at),
                )
                ids = [
                    connection.execute(
                        "INSERT INTO chunks (document_id, position, text) VALUES (?, ?, ?)",
                        (document.id, position, text),
                    ).lastrowid
                    for position, text in enumerate(chunks)
                ]
                index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.array(ids, dtype=np.int64))
                self._persist(index)
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        return document

    def delete_document(self, document_id: str) -> bool:
        """Remove a document and its chunks; False when this store has no such document."""
        with self._writing() as connection:
            connection.execute("BEGIN IMMEDIATE")
            deleted = connection.execute("DELETE FROM documents WHERE id = ?", (document_id,)).rowcount
            connection.execute("DELETE FROM chunks WHERE document_id = ?", (document_id,))
            connection.execute("COMMIT")
            if not deleted:
                return False
            space = self.space()
            if space is not None:
                self._persist(self._writable_index(connection, space.dimensions))  # drops the rows' vectors
        return True

    def _claim_space(self, connection: sqlite3.Connection, space: EmbeddingSpace) -> None:
        """The first document fixes the embedding model; later ones must use the same."""
        current = self.space()
        if current is None:
            connection.executemany(
                "INSERT INTO settings VALUES (?, ?)", [("model", space.model), ("dimensions", str(space.dimensions))]
            )
        elif current != space:
            raise EmbeddingMismatch(
                f"this knowledge base was built with {current.model} ({current.dimensions} dimensions), "
                f"the gateway now embeds with {space.model} ({space.dimensions}); "
                "delete the knowledge directory and ingest the documents again"
            )

    def _writable_index(self, connection: sqlite3.Connection, dimensions: int) -> faiss.Index:
        """A private copy of the newest index, without vectors whose catalogue rows are gone."""
        current = self._current_index()
        if current is None:
            return faiss.IndexIDMap2(faiss.IndexFlatIP(dimensions))
        index = faiss.clone_index(current)
        (rows,) = connection.execute("SELECT count(*) FROM chunks").fetchone()
        if index.ntotal != rows:
            known = {chunk_id for (chunk_id,) in connection.execute("SELECT id FROM chunks")}
            leftovers = [chunk_id for chunk_id in faiss.vector_to_array(index.id_map) if chunk_id not in known]
            if leftovers:
                index.remove_ids(np.array(leftovers, dtype=np.int64))
        return index

    def _persist(self, index: faiss.Index) -> None:
        partial = self._index_path.with_name(f"{INDEX_FILE}.{os.getpid()}.{threading.get_ident()}.partial")
        try:
            faiss.write_index(index, str(partial))
            partial.chmod(PRIVATE_FILE)
            with open(partial, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(partial, self._index_path)
        finally:
            partial.unlink(missing_ok=True)
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        with self._reload_lock:
            self._index, self._loaded_signature = index, _signature(self._index_path)

    # --- plumbing --------------------------------------------------------------------------

    def _current_index(self) -> faiss.Index | None:
        """The in-memory index, reloaded first when another process (or worker) replaced the file."""
        signature = _signature(self._index_path)
        if signature != self._loaded_signature:
            with self._reload_lock:
                if signature != self._loaded_signature:
                    self._index = faiss.read_index(str(self._index_path)) if signature else None
                    self._loaded_signature = signature
        return self._index

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One writer at a time across processes and threads (each call opens its own lock file)."""
        with os.fdopen(_create_private(self.directory / LOCK_FILE), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                with self._connect() as connection:
                    yield connection
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE ... COMMIT) where they matter.
        connection = sqlite3.connect(self._catalogue_path, timeout=30, isolation_level=None)
        try:
            yield connection
        finally:
            connection.close()


def _create_private(path: Path) -> int:
    """Open `path` for appending, created (or made) 0600; returns the descriptor."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE)
    os.fchmod(fd, PRIVATE_FILE)
    return fd


def _signature(path: Path) -> tuple | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size
