"""Retrieval quality on a small labelled set shipped with the tests (retrieval_set/):
twelve company documents and questions phrased unlike the text that answers them.
recall@3 = share of questions whose answering document is among the top three chunks.
"""

from __future__ import annotations

import json
from pathlib import Path

RETRIEVAL_SET = Path(__file__).parent / "retrieval_set"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
MIN_RECALL_AT_3 = 0.8


def test_recall_at_3(documents):
    ids = {}
    for path in sorted(RETRIEVAL_SET.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        ids[documents.add("acme-corp", text.splitlines()[0].lstrip("# "), text)["id"]] = path.name
    questions = json.loads((RETRIEVAL_SET / "questions.json").read_text())
    results = []
    for item in questions:
        top = [ids.get(hit["document_id"], "(other)") for hit in documents.search("acme-corp", item["question"], 3)]
        results.append({**item, "top3": top, "hit": item["document"] in top})
    recall = sum(result["hit"] for result in results) / len(results)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "retrieval_quality.json").write_text(json.dumps({"recall_at_3": recall, "results": results}, indent=2))
    misses = [f"{r['question']!r} -> {r['top3']} (wanted {r['document']})" for r in results if not r["hit"]]
    assert recall >= MIN_RECALL_AT_3, f"recall@3 {recall:.2f}; misses:\n" + "\n".join(misses)
