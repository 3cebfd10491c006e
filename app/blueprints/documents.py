"""`/documents`: the tenant's knowledge — add (POST), list, show, delete, search.

Every route works on this proxy's own knowledge base only; an id from another
tenant is simply not there (404). Adding and deleting need a tenant admin key
(app/admin_keys.py); listing, showing and searching follow the end-user key rules.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from app.admin_keys import require_admin_key
from app.knowledge.grounding import citation
from app.knowledge.retrieval import KnowledgeBase
from app.knowledge.store import Document
from app.knowledge.upload import read_document
from app.request_body import read_json_object
from app.schemas import SearchRequest
from app.services import current_services
from llm_common.errors import ApiError
from llm_common.json_body import validate_model

blueprint = Blueprint("documents", __name__)


@blueprint.post("/documents")
def add_document():
    config = current_services().config
    require_admin_key(config.admin_key_sha256)
    knowledge = _knowledge()
    upload = read_document(request, config.max_document_bytes)
    document = knowledge.add_document(upload.title, upload.text)
    return jsonify(_document_json(document, _model(knowledge))), 201


@blueprint.get("/documents")
def list_documents():
    knowledge = _knowledge()
    model = _model(knowledge)
    return jsonify({"object": "list", "data": [_document_json(d, model) for d in knowledge.store.documents()]})


@blueprint.get("/documents/<document_id>")
def show_document(document_id: str):
    knowledge = _knowledge()
    document = knowledge.store.document(document_id)
    if document is None:
        raise _not_found(document_id)
    return jsonify(_document_json(document, _model(knowledge)))


@blueprint.delete("/documents/<document_id>")
def delete_document(document_id: str):
    require_admin_key(current_services().config.admin_key_sha256)
    if not _knowledge().store.delete_document(document_id):
        raise _not_found(document_id)
    return jsonify({"id": document_id, "object": "document.deleted", "deleted": True})


@blueprint.post("/documents/search")
def search_documents():
    """Retrieval alone, without an answer: the chunks `/ask` would consider, scores unfiltered."""
    knowledge = _knowledge()
    search = validate_model(SearchRequest, read_json_object(request, 64 * 1024))
    return jsonify({"object": "list", "data": [citation(hit) for hit in knowledge.search(search.query, search.top_k)]})


def _knowledge() -> KnowledgeBase:
    knowledge = current_services().knowledge
    if knowledge is None:
        raise ApiError(
            404, "this tenant has no knowledge base (the proxy runs without KNOWLEDGE_DIR)", code="knowledge_disabled"
        )
    return knowledge


def _not_found(document_id: str) -> ApiError:
    return ApiError(404, f"no document '{document_id}' in this tenant's knowledge base", code="document_not_found")


def _model(knowledge: KnowledgeBase) -> str | None:
    space = knowledge.store.space()
    return space.model if space else None


def _document_json(document: Document, embedding_model: str | None) -> dict:
    return {
        "id": document.id,
        "object": "document",
        "title": document.title,
        "bytes": document.bytes,
        "chunks": document.chunk_count,
        "created_at": int(document.created_at),
        "embedding_model": embedding_model,
    }
