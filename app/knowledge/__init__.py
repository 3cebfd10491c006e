"""Tenant knowledge: documents split into chunks, embedded through the gateway, searched with FAISS.

- `chunking.py`  text/markdown -> chunks the embedding model reads whole
- `store.py`     one tenant's FAISS index + SQLite catalogue in one directory, safe across workers
- `retrieval.py` KnowledgeBase: ingest, search and delete (embeddings come from the gateway)
- `grounding.py` retrieved chunks -> delimited context in the caller's turn and the `citations` of an answer
- `upload.py`    reading a `POST /documents` body (JSON, text/plain, text/markdown)

Isolation is by construction: a proxy serves one tenant and opens only that tenant's
directory, and nothing here takes a tenant name, so no request can reach another
tenant's index.
"""
