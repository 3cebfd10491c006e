"""`tenantctl ingest|documents|forget`: a tenant's knowledge base, through its running proxy.

    tenantctl ingest acme-corp docs/*.md     add files (title: the first markdown heading, else the file name)
    tenantctl documents acme-corp            list the tenant's documents
    tenantctl forget acme-corp doc_…         delete one

The proxy is found in local mode's state (`--run-dir`), or named with `--url` (for
example a port-forwarded proxy on a cluster). Everything goes through the proxy's
`/documents` API, so chunking, embedding and the index's locking stay in one place.

Changing documents needs the tenant admin key (sent as `Authorization: Bearer`; listing
sends it too, where end-user keys are required): from `--admin-key-file`, else the
environment's TENANTCTL_ADMIN_KEY, else the key local mode generated in
`<run dir>/admin-keys/<tenant>.key`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import httpx

from app.knowledge.chunking import heading_text
from app.knowledge.upload import MAX_TITLE_CHARACTERS
from tenantctl.local.state import DEFAULT_RUN_DIR, admin_key_path, tenant_url

MARKDOWN_SUFFIXES = (".md", ".markdown")
ADMIN_KEY_ENV = "TENANTCTL_ADMIN_KEY"
INGEST_TIMEOUT = httpx.Timeout(900.0, connect=5.0)  # embedding a long document on a CPU takes a while


def register(subparsers) -> None:
    """Add `ingest`, `documents` and `forget` to a CLI's argparse subparsers."""
    ingest = subparsers.add_parser("ingest", help="add text or markdown files to a tenant's knowledge base")
    _tenant_arguments(ingest)
    ingest.add_argument("files", nargs="+", type=Path, metavar="FILE")
    ingest.add_argument("--title", help="the document's title (one file only; default: its first heading or name)")
    ingest.set_defaults(handler=command_ingest)

    documents = subparsers.add_parser("documents", help="list a tenant's documents")
    _tenant_arguments(documents)
    documents.set_defaults(handler=command_documents)

    forget = subparsers.add_parser("forget", help="delete a document from a tenant's knowledge base")
    _tenant_arguments(forget)
    forget.add_argument("document_id")
    forget.set_defaults(handler=command_forget)


def _tenant_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("tenant")
    parser.add_argument("--run-dir", type=Path, default=DEFAULT_RUN_DIR, help="local mode's state (default .run/local)")
    parser.add_argument("--url", help="the tenant proxy's URL instead of local mode's, e.g. http://127.0.0.1:5002")
    parser.add_argument(
        "--admin-key-file",
        type=Path,
        help=f"file holding the tenant admin key (default: ${ADMIN_KEY_ENV}, else local mode's)",
    )


def _proxy_url(args: argparse.Namespace) -> str:
    return (args.url or tenant_url(args.run_dir, args.tenant)).rstrip("/")


def _admin_headers(args: argparse.Namespace) -> dict[str, str]:
    """`Authorization: Bearer <admin key>` when a key is known (without one the proxy says what is missing)."""
    if args.admin_key_file is not None:
        try:
            key = args.admin_key_file.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise RuntimeError(f"{args.admin_key_file}: {error.strerror}") from None
    else:
        key = os.environ.get(ADMIN_KEY_ENV, "").strip()
        local = admin_key_path(args.run_dir, args.tenant)
        if not key and local.is_file():
            key = local.read_text(encoding="utf-8").strip()
    return {"Authorization": f"Bearer {key}"} if key else {}


def command_ingest(args: argparse.Namespace) -> int:
    if args.title and len(args.files) > 1:
        raise RuntimeError("--title names one document: give one file")
    url = _proxy_url(args) + "/documents"
    admin = _admin_headers(args)
    failures = 0
    with httpx.Client(timeout=INGEST_TIMEOUT) as http:
        for path in args.files:
            try:
                content = path.read_bytes()
            except OSError as error:
                print(f"{path}: {error.strerror}", file=sys.stderr)
                failures += 1
                continue
            title = args.title or document_title(path, content)
            response = _request(
                http,
                "POST",
                url,
                params={"title": title},
                content=content,
                headers={"Content-Type": f"{_media_type(path)}; charset=utf-8", **admin},
            )
            if response.status_code != 201:
                print(f"{path}: {_error_message(response)}", file=sys.stderr)
                failures += 1
                continue
            document = response.json()
            print(f"{document['id']}  {document['chunks']:>5} chunks  {document['title']}  ({path})")
    return 1 if failures else 0


def command_documents(args: argparse.Namespace) -> int:
    with httpx.Client(timeout=30) as http:
        response = _request(http, "GET", _proxy_url(args) + "/documents", headers=_admin_headers(args))
    if response.status_code != 200:
        raise RuntimeError(_error_message(response))
    for document in response.json()["data"]:
        print(f"{document['id']}  {document['chunks']:>5} chunks  {document['bytes']:>9} bytes  {document['title']}")
    return 0


def command_forget(args: argparse.Namespace) -> int:
    with httpx.Client(timeout=60) as http:
        response = _request(
            http, "DELETE", f"{_proxy_url(args)}/documents/{args.document_id}", headers=_admin_headers(args)
        )
    if response.status_code != 200:
        raise RuntimeError(_error_message(response))
    print(f"deleted {args.document_id}")
    return 0


def document_title(path: Path, content: bytes) -> str:
    """A markdown file's first heading, otherwise the file name without its suffix."""
    if path.suffix.lower() in MARKDOWN_SUFFIXES:
        for line in content[:4096].decode("utf-8", errors="ignore").splitlines():
            heading = heading_text(line)
            if heading:
                return heading[:MAX_TITLE_CHARACTERS]
    return path.stem


def _media_type(path: Path) -> str:
    return "text/markdown" if path.suffix.lower() in MARKDOWN_SUFFIXES else "text/plain"


def _request(http: httpx.Client, method: str, url: str, **kwargs) -> httpx.Response:
    try:
        return http.request(method, url, **kwargs)
    except httpx.HTTPError as error:
        raise RuntimeError(f"cannot reach {url}: {error}") from None


def _error_message(response: httpx.Response) -> str:
    try:
        return f"HTTP {response.status_code}: {response.json()['error']['message']}"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {response.text[:200]}"
