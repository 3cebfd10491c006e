"""`tenantctl ingest|documents|forget` as a user runs them, against the running platform."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tenantctl.commands.knowledge import document_title


def tenantctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tenantctl", *args], capture_output=True, text=True, timeout=300)


def test_ingest_list_and_forget(platform, tmp_path, documents):
    run_dir = str(platform.platform.settings.run_dir)
    (tmp_path / "claims.md").write_text("# Filing a claim\n\nSend the claim form and photos to claims@closed.ai.\n")
    (tmp_path / "hours.txt").write_text("The Closed AI hotline is open from 8 am to 8 pm on weekdays.\n")
    (tmp_path / "latin1.txt").write_bytes("Sch\u00e4den".encode("latin-1"))
    result = tenantctl(
        "ingest",
        "closed-ai",
        str(tmp_path / "claims.md"),
        str(tmp_path / "hours.txt"),
        str(tmp_path / "latin1.txt"),
        str(tmp_path / "missing.md"),
        "--run-dir",
        run_dir,
    )
    assert result.returncode == 1  # two of four files failed, and each says why
    assert "latin1.txt: HTTP 400: document: is not UTF-8 text" in result.stderr
    assert "missing.md: No such file or directory" in result.stderr
    ingested = dict(line.split(maxsplit=1) for line in result.stdout.splitlines())
    documents.added += [("closed-ai", document_id) for document_id in ingested]  # cleaned up by the fixture
    assert sorted(line.split("chunks  ")[1] for line in ingested.values()) == [
        f"Filing a claim  ({tmp_path / 'claims.md'})",
        f"hours  ({tmp_path / 'hours.txt'})",
    ]
    assert documents.search("closed-ai", "When is the hotline open?", 1)[0]["document_id"] in ingested

    listed = tenantctl("documents", "closed-ai", "--url", platform.tenant_urls["closed-ai"])
    assert listed.returncode == 0 and all(document_id in listed.stdout for document_id in ingested)
    first = next(iter(ingested))
    assert tenantctl("forget", "closed-ai", first, "--run-dir", run_dir).returncode == 0
    again = tenantctl("forget", "closed-ai", first, "--run-dir", run_dir)
    assert again.returncode == 1 and "HTTP 404" in again.stderr
    assert first not in tenantctl("documents", "closed-ai", "--run-dir", run_dir).stdout


def test_ingest_refuses_unknown_tenants_and_a_title_for_many_files(platform, tmp_path):
    run_dir = str(platform.platform.settings.run_dir)
    unknown = tenantctl("ingest", "nobody", str(tmp_path / "a.md"), "--run-dir", run_dir)
    assert unknown.returncode == 1 and "unknown tenant 'nobody'" in unknown.stderr
    titled = tenantctl("ingest", "acme-corp", "a.md", "b.md", "--title", "T", "--run-dir", run_dir)
    assert titled.returncode == 1 and "one file" in titled.stderr


@pytest.mark.parametrize(
    "name, content, title",
    [
        ("guide.md", b"Intro line\n\n## Setting up\n\ntext", "Setting up"),
        ("guide.md", b"no heading here", "guide"),
        ("notes.txt", b"# not markdown here", "notes"),
    ],
)
def test_document_title(tmp_path, name, content, title):
    assert document_title(tmp_path / name, content) == title
