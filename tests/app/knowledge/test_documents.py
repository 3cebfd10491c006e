"""`/documents` and grounded `/ask`: on the real platform, tenant isolation, deletion and persistence; from the
app factory with the stub upstream (the fast layer), bad input and a proxy without knowledge."""

from __future__ import annotations

import json

import httpx
import pytest

from llm_common.keys import sha256_hex
from tests.helpers import proxy_app

ACME_CLAIMS = (
    "Acme Corp insurance claims: to file a claim for a broken company laptop, open a ticket in "
    "the Acme IT portal and attach the repair quote. Acme approves laptop claims within two days."
)
CLOSED_CLAIMS = (
    "Closed AI Insurance claims: to file a claim for a damaged car, call the Closed AI hotline "
    "and send photos of the damage. Closed AI approves car claims within ten days."
)
QUESTION = "How do I file an insurance claim?"


def cited_documents(citations: list[dict]) -> set[str]:
    return {citation["document_id"] for citation in citations}


def test_each_tenant_retrieves_and_cites_only_its_own_documents(platform, documents):
    acme = documents.add("acme-corp", "Acme claims", ACME_CLAIMS)
    closed = documents.add("closed-ai", "Closed AI claims", CLOSED_CLAIMS)
    for tenant, own, other in (("acme-corp", acme, closed), ("closed-ai", closed, acme)):
        assert cited_documents(documents.search(tenant, QUESTION, top_k=10)) == {own["id"]}
        answer = platform.ask(tenant, question=QUESTION, temperature=0, max_tokens=20)
        assert answer.status_code == 200, answer.text
        citations = answer.json()["citations"]
        assert cited_documents(citations) == {own["id"]}
        assert set(citations[0]) >= {"document_id", "title", "chunk_id", "score"}
        assert citations[0]["title"] == own["title"] and 0 < citations[0]["score"] <= 1
        refused = httpx.get(f"{platform.tenant_urls[tenant]}/documents/{other['id']}")
        assert refused.status_code == 404
        assert refused.json()["error"]["code"] == "document_not_found"
        assert documents.delete(tenant, other["id"]).status_code == 404


def test_streamed_answers_carry_citations_in_the_done_event(platform, documents):
    document = documents.add("acme-corp", "Acme claims", ACME_CLAIMS)
    body = {"question": QUESTION, "stream": True, "temperature": 0, "max_tokens": 10}
    with httpx.stream("POST", platform.tenant_urls["acme-corp"] + "/ask", json=body, timeout=120) as response:
        events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: {")]
    done = next(event for event in events if event["type"] == "done")
    assert cited_documents(done["citations"]) == {document["id"]}


def test_unrelated_questions_and_knowledge_false_get_no_citations(platform, documents):
    documents.add("acme-corp", "Acme claims", ACME_CLAIMS)
    unrelated = platform.ask("acme-corp", question="What is the capital of France?", max_tokens=5)
    assert unrelated.json()["citations"] == []  # below the relevance threshold
    opted_out = platform.ask("acme-corp", question=QUESTION, max_tokens=5, knowledge=False)
    assert opted_out.json()["citations"] == []


def test_deleting_a_document_removes_it_from_retrieval(platform, documents):
    keep = documents.add("acme-corp", "Printer", "The office printer is on the third floor next to the kitchen.")
    drop = documents.add("acme-corp", "Parking", "Car parking spaces in the basement are assigned by facilities.")
    assert documents.search("acme-corp", "Where can I park my car?", top_k=1)[0]["document_id"] == drop["id"]
    deleted = documents.delete("acme-corp", drop["id"])
    assert deleted.status_code == 200 and deleted.json() == {
        "id": drop["id"],
        "object": "document.deleted",
        "deleted": True,
    }
    # Every worker of the proxy must see the deletion: ask several times on fresh connections.
    for _ in range(6):
        assert drop["id"] not in cited_documents(documents.search("acme-corp", "Where can I park my car?", 5))
    assert httpx.get(f"{platform.tenant_urls['acme-corp']}/documents/{drop['id']}").status_code == 404
    listed = httpx.get(platform.tenant_urls["acme-corp"] + "/documents").json()["data"]
    assert keep["id"] in {d["id"] for d in listed} and drop["id"] not in {d["id"] for d in listed}


def test_knowledge_is_persisted_per_tenant_and_survives_a_restart(platform, documents):
    document = documents.add("closed-ai", "Claims hotline", CLOSED_CLAIMS)
    acme_dir = platform.platform.knowledge_dir("acme-corp")
    closed_dir = platform.platform.knowledge_dir("closed-ai")
    assert (closed_dir / "chunks.faiss").is_file() and (closed_dir / "catalogue.sqlite3").is_file()
    assert document["id"].encode() not in (acme_dir / "catalogue.sqlite3").read_bytes()
    proxy = platform.platform.process("proxy-closed-ai")
    proxy.stop()
    proxy.start()
    proxy.wait_healthy(60)
    shown = httpx.get(f"{platform.tenant_urls['closed-ai']}/documents/{document['id']}")
    assert shown.status_code == 200 and shown.json()["chunks"] == document["chunks"]
    assert documents.search("closed-ai", "damaged car claim", 1)[0]["document_id"] == document["id"]


TWENTY_MB = b"a" * (20 * 1024 * 1024)
BAD_UPLOADS = [
    ("empty JSON text", {"json": {"title": "t", "text": ""}}, 400, "empty_document"),
    ("blank text", {"json": {"title": "t", "text": " \n\t "}}, 400, "empty_document"),
    ("only headings", {"json": {"title": "t", "text": "# A\n\n## B"}}, 400, "empty_document"),
    (
        "empty raw body",
        {"content": b"", "params": {"title": "t"}, "headers": {"Content-Type": "text/plain"}},
        400,
        "empty_document",
    ),
    (
        "20 MB upload",
        {"content": TWENTY_MB, "params": {"title": "t"}, "headers": {"Content-Type": "text/plain"}},
        413,
        "document_too_large",
    ),
    (
        "20 MB JSON",
        {"content": b'{"title": "t", "text": "' + TWENTY_MB + b'"}', "headers": {"Content-Type": "application/json"}},
        413,
        "request_too_large",
    ),
    (
        "non-UTF-8 bytes",
        {
            "content": "caf\u00e9 cr\u00e8me".encode("latin-1"),
            "params": {"title": "t"},
            "headers": {"Content-Type": "text/markdown"},
        },
        400,
        "invalid_encoding",
    ),
    (
        "NUL bytes",
        {"content": b"PK\x03\x04\x00\x00binary", "params": {"title": "t"}, "headers": {"Content-Type": "text/plain"}},
        400,
        "binary_document",
    ),
    (
        "latin-1 charset",
        {"content": b"text", "params": {"title": "t"}, "headers": {"Content-Type": "text/plain; charset=latin-1"}},
        415,
        "unsupported_charset",
    ),
    ("missing title", {"content": b"text", "headers": {"Content-Type": "text/plain"}}, 400, "invalid_request"),
    ("blank title", {"json": {"title": "  ", "text": "text"}}, 400, "invalid_request"),
    ("title too long", {"json": {"title": "t" * 201, "text": "text"}}, 400, "invalid_request"),
    ("text not a string", {"json": {"title": "t", "text": ["a"]}}, 400, "invalid_request"),
    ("unknown field", {"json": {"title": "t", "text": "a", "tenant": "closed-ai"}}, 400, "invalid_request"),
    (
        "PDF content type",
        {"content": b"%PDF-1.7", "headers": {"Content-Type": "application/pdf"}},
        415,
        "unsupported_media_type",
    ),
]


ADMIN = "ak-documents-admin"


@pytest.fixture
def client(stub_upstream, tmp_path):
    return proxy_app(
        stub_upstream, knowledge_dir=str(tmp_path / "knowledge"), admin_key_sha256=[sha256_hex(ADMIN)]
    ).test_client()


def as_test_client_arguments(request_kwargs: dict) -> dict:
    """httpx's request arguments (content, params) as the Flask test client's (data, query_string)."""
    renamed = {"content": "data", "params": "query_string"}
    return {renamed.get(name, name): value for name, value in request_kwargs.items()}


@pytest.mark.parametrize("label, request_kwargs, status, code", BAD_UPLOADS, ids=[case[0] for case in BAD_UPLOADS])
def test_bad_uploads_get_an_openai_shaped_4xx(client, label, request_kwargs, status, code):
    kwargs = as_test_client_arguments(request_kwargs)
    kwargs["headers"] = {"Authorization": f"Bearer {ADMIN}", **kwargs.get("headers", {})}
    response = client.post("/documents", **kwargs)
    assert response.status_code == status, response.text
    assert response.json["error"]["code"] == code
    assert response.json["error"]["type"] == "invalid_request_error" and response.json["error"]["message"]
    assert client.get("/documents").json["data"] == []


@pytest.mark.parametrize(
    "method, path, body, status",
    [
        ("GET", "/documents/doc_000000000000000000000000", None, 404),
        ("DELETE", "/documents/not-an-id", None, 404),
        ("POST", "/documents/search", {"query": ""}, 400),
        ("POST", "/documents/search", {"query": "x", "top_k": 0}, 400),
    ],
)
def test_unknown_documents_and_bad_searches(client, method, path, body, status):
    response = client.open(path, method=method, json=body, headers={"Authorization": f"Bearer {ADMIN}"})
    assert response.status_code == status, response.text
    assert set(response.json["error"]) == {"type", "message", "code", "request_id"}


def test_a_proxy_without_knowledge_dir_answers_without_documents(stub_upstream):
    client = proxy_app(stub_upstream).test_client()
    response = client.get("/documents")
    assert response.status_code == 404 and response.json["error"]["code"] == "knowledge_disabled"
    # Writes are refused first for the missing admin key (none configured): who asks comes before what.
    response = client.post("/documents", json={"title": "t", "text": "x"})
    assert response.status_code == 403 and response.json["error"]["code"] == "admin_key_not_configured"
    answer = client.post("/ask", json={"question": "Hi"})
    assert answer.status_code == 200 and answer.json["citations"] == []
