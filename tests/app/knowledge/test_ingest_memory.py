"""A hostile document is ingested in memory linear in its size.

The document: one markdown heading a fifth of its size long (were it to open every chunk, a 200 KB
document would make 45 MB of chunks, a 5 MiB one about 55 GB), then prose. The
ingest runs in a fresh Python process (the proxy app from its factory, embedding through the stub
gateway over HTTP), which reports how far its peak resident memory rose above where it was just
before the upload; the bound is linear in the document's size.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from llm_common.keys import sha256_hex
from tests.helpers import REPO_ROOT, proxy_app

KiB, MiB = 1024, 1024 * 1024
ADMIN = "ak-memory"
PROSE = "lorem ipsum dolor sit amet consectetur adipiscing elit "


def hostile_document(size: int) -> bytes:
    heading = "# " + "heading " * (size // 5 // 8)
    return (heading + "\n\n" + PROSE * ((size - len(heading)) // len(PROSE))).encode()


def memory_bound(size: int) -> int:
    """Ten times the document (raw bytes, text, chunks, their vectors, the index) plus a constant."""
    return 10 * size + 16 * MiB


def measure_ingest(stub_url: str, knowledge_dir: str, size: int) -> None:
    """Run in a child process: upload one hostile document, print the outcome and the peak RSS rise as JSON."""
    document = hostile_document(size)
    client = proxy_app(stub_url, knowledge_dir=knowledge_dir, admin_key_sha256=[sha256_hex(ADMIN)]).test_client()
    headers = {"Content-Type": "text/markdown", "Authorization": f"Bearer {ADMIN}"}
    # One small document first: the one-time set-up (HTTP client, FAISS, SQLite) is not the document's cost.
    assert client.post("/documents?title=Warm-up", data=b"A first small document.", headers=headers).status_code == 201
    Path("/proc/self/clear_refs").write_text("5")  # Linux: the peak resident size (VmHWM) starts again from now
    before = _status_bytes("VmRSS")
    response = client.post("/documents?title=Hostile", data=document, headers=headers)
    print(
        json.dumps(
            {
                "status": response.status_code,
                "body": response.json,
                "bytes": len(document),
                "peak_rise": _status_bytes("VmHWM") - before,
            }
        )
    )


def _status_bytes(field: str) -> int:
    """A memory figure of this process from /proc/self/status (given in kB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"{field} not in /proc/self/status")


@pytest.mark.parametrize("size", [200 * KiB, 5 * MiB], ids=["200 KiB", "5 MiB"])
def test_a_hostile_document_is_ingested_in_bounded_memory(stub_url, tmp_path, size):
    code = (
        f"from tests.app.knowledge.test_ingest_memory import measure_ingest; "
        f"measure_ingest({stub_url!r}, {str(tmp_path / 'knowledge')!r}, {size})"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    outcome = json.loads(run.stdout.strip().splitlines()[-1])
    assert outcome["status"] == 201, outcome["body"]
    assert outcome["body"]["chunks"] > 0
    assert outcome["peak_rise"] <= memory_bound(outcome["bytes"]), (
        f"peak memory rose {outcome['peak_rise'] / MiB:.1f} MiB for a {outcome['bytes'] / MiB:.2f} MiB document"
    )


def test_a_document_making_too_many_chunks_is_refused_before_embedding(stub_upstream, tmp_path):
    client = proxy_app(
        stub_upstream,
        knowledge_dir=str(tmp_path / "knowledge"),
        admin_key_sha256=[sha256_hex(ADMIN)],
        max_chunks_per_document=10,
    ).test_client()
    response = client.post(
        "/documents?title=Long",
        data="word " * 5000,
        headers={"Content-Type": "text/plain", "Authorization": f"Bearer {ADMIN}"},
    )
    assert response.status_code == 413 and response.json["error"]["code"] == "document_too_many_chunks"
    assert client.get("/documents").json["data"] == []
