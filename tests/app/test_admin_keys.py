"""Knowledge writes need a tenant admin key; no state-changing request from another site's page.

Factory level: the proxy app with a knowledge directory, in front of the stub gateway (which embeds).
"""

from __future__ import annotations

import pytest

from llm_common.keys import sha256_hex
from tests.helpers import proxy_app

ADMIN, END_USER = "ak-admin-key-1234", "ek-end-user-5678"
DOCUMENT = "The Globex cafeteria opens at eight."


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def upload(client, headers: dict | None = None, **kwargs):
    """A raw text/plain upload: what a web page can send cross-site without a preflight."""
    return client.post(
        "/documents?title=Cafeteria", data=DOCUMENT, headers={"Content-Type": "text/plain", **(headers or {})}, **kwargs
    )


@pytest.fixture
def client(stub_upstream, tmp_path):
    return proxy_app(
        stub_upstream, knowledge_dir=str(tmp_path / "knowledge"), admin_key_sha256=[sha256_hex(ADMIN)]
    ).test_client()


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json["error"]["code"] == code and response.json["error"]["message"]


def test_adding_and_deleting_documents_needs_the_admin_key(client):
    assert_error(upload(client), 401, "missing_admin_key")
    assert_error(upload(client, bearer("ak-wrong")), 403, "admin_key_required")
    assert_error(client.post("/documents", json={"title": "t", "text": DOCUMENT}), 401, "missing_admin_key")
    added = upload(client, bearer(ADMIN))
    assert added.status_code == 201, added.text
    document_id = added.json["id"]
    # Reads and searches follow the end-user rules (none configured here): no key needed.
    assert [d["id"] for d in client.get("/documents").json["data"]] == [document_id]
    assert client.get(f"/documents/{document_id}").status_code == 200
    assert client.post("/documents/search", json={"query": "cafeteria"}).json["data"][0]["document_id"] == document_id
    assert_error(client.delete(f"/documents/{document_id}"), 401, "missing_admin_key")
    assert_error(client.delete(f"/documents/{document_id}", headers=bearer("ak-wrong")), 403, "admin_key_required")
    assert client.delete(f"/documents/{document_id}", headers=bearer(ADMIN)).status_code == 200
    assert client.get("/documents").json["data"] == []


def test_with_end_user_keys_reads_need_a_key_and_the_admin_key_is_one(stub_upstream, tmp_path):
    client = proxy_app(
        stub_upstream,
        knowledge_dir=str(tmp_path / "knowledge"),
        admin_key_sha256=[sha256_hex(ADMIN)],
        end_user_key_sha256=[sha256_hex(END_USER)],
    ).test_client()
    assert_error(client.get("/documents"), 401, "missing_api_key")
    assert client.get("/documents", headers=bearer(END_USER)).status_code == 200
    assert client.get("/documents", headers=bearer(ADMIN)).status_code == 200
    assert_error(upload(client, bearer(END_USER)), 403, "admin_key_required")
    assert upload(client, bearer(ADMIN)).status_code == 201
    assert (
        client.post("/ask", json={"question": "When does the cafeteria open?"}, headers=bearer(END_USER)).status_code
        == 200
    )


def test_without_an_admin_key_in_the_spec_nobody_can_write(stub_upstream, tmp_path):
    client = proxy_app(stub_upstream, knowledge_dir=str(tmp_path / "knowledge")).test_client()
    assert_error(upload(client, bearer(ADMIN)), 403, "admin_key_not_configured")
    assert client.get("/documents").status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "same-site", "Origin": "http://other-tenant.localhost"},  # e.g. another tenant's proxy
        {"Origin": "https://evil.example"},  # a browser without Sec-Fetch-*
        {"Origin": "null"},  # a sandboxed frame or a file:// page
    ],
    ids=["cross-site", "same-site", "foreign origin", "null origin"],
)
def test_state_changing_requests_from_another_site_are_refused(client, headers):
    """Even with a valid key (a page cannot hold one, but the check does not depend on it)."""
    assert_error(upload(client, headers), 403, "cross_site_request")
    assert_error(upload(client, {**headers, **bearer(ADMIN)}), 403, "cross_site_request")
    assert_error(client.post("/ask", json={"question": "Hi"}, headers=headers), 403, "cross_site_request")
    assert_error(client.delete("/documents/doc_x", headers={**headers, **bearer(ADMIN)}), 403, "cross_site_request")
    assert client.get("/documents", headers=headers).status_code == 200  # reads are not state-changing
    assert client.get("/documents").json["data"] == []


def test_same_origin_requests_pass(client):
    """What the chat page sends: its own origin (the test client's host is localhost)."""
    same_origin = {"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"}
    assert client.post("/ask", json={"question": "Hi"}, headers=same_origin).status_code == 200
    assert upload(client, {**same_origin, **bearer(ADMIN)}).status_code == 201
