"""Tenant knowledge: ingest throughput and retrieval latency at 1k and 100k chunks per tenant.

One run measures, side by side:
  ingest    chunks/s through `POST /documents` (chunking + embedding through the gateway
            + FAISS/SQLite write), interleaved per document with the embedding server alone
            on the same inputs; and the store alone
  retrieval p50/p99 of `POST /documents/search` end to end (question embedded through the
            gateway, FAISS search, catalogue lookup) and of the store's search alone,
            at 1k chunks (real text, real embeddings) and 100k chunks
  growth    adding one 20-chunk document to an index that already holds 1k or 100k chunks

The 1k-chunk tenant is real text (sentences of tests/app/knowledge/retrieval_set shuffled
into documents) embedded by all-MiniLM-L6-v2. Embedding 100k chunks on this 2-core machine
would take hours, so the 100k-chunk index holds random unit vectors (384 dimensions) with
synthetic chunk text: search cost does not depend on what the vectors mean, and the
questions are still embedded for real. Results: bench/results/knowledge.{json,md}.

    python bench/knowledge.py [--chunks-small 1000] [--chunks-large 100000] [--queries 200]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from app.knowledge.chunking import split_into_chunks  # noqa: E402
from app.knowledge.store import EmbeddingSpace, KnowledgeStore  # noqa: E402
from llm_common.keys import sha256_hex  # noqa: E402
from llm_gateway.auth import hash_gateway_key  # noqa: E402
from tenantctl.local import embedding_model, launchers, model_cache  # noqa: E402
from tenantctl.local.catalogue import DEFAULT_CATALOGUE  # noqa: E402
from tenantctl.processes import ManagedProcess, free_port  # noqa: E402

RESULTS = REPO / "bench" / "results"
RETRIEVAL_SET = REPO / "tests" / "app" / "knowledge" / "retrieval_set"
KEY = "gk-bench-knowledge"
ADMIN_KEY = "ak-bench-knowledge"
CHUNK_WORDS, CHUNK_OVERLAP = 120, 20  # the proxy's defaults
SPACE = EmbeddingSpace(embedding_model.EMBEDDING_MODEL_NAME, embedding_model.EMBEDDING_DIMENSIONS)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def latency_summary(seconds: list[float]) -> dict:
    return {
        "n": len(seconds),
        "p50_ms": round(percentile(seconds, 0.5) * 1000, 2),
        "p99_ms": round(percentile(seconds, 0.99) * 1000, 2),
        "mean_ms": round(statistics.fmean(seconds) * 1000, 2),
    }


def start(process: ManagedProcess) -> ManagedProcess:
    process.start()
    try:
        process.wait_healthy(180)
    except BaseException:
        process.stop()
        raise
    return process


# --- workload ---------------------------------------------------------------------------------


def sentences() -> list[str]:
    text = " ".join(path.read_text() for path in sorted(RETRIEVAL_SET.glob("*.md")))
    text = re.sub(r"#+ [^\n]*", " ", text)
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", " ".join(text.split())) if len(s.split()) > 3]


def real_documents(chunks: int, chunks_per_document: int = 20, seed: int = 7) -> list[tuple[str, str]]:
    """Documents of shuffled real sentences, each about `chunks_per_document` chunks long."""
    rng = random.Random(seed)
    pool = sentences()
    documents = []
    for number in range(chunks // chunks_per_document):
        paragraphs = []
        for _ in range(chunks_per_document):
            words: list[str] = []
            while len(words) < CHUNK_WORDS - 50:  # paragraphs under a chunk (sentences run long): one chunk each
                words += rng.choice(pool).split()
            paragraphs.append(" ".join(words))
        documents.append((f"Handbook part {number}", "\n\n".join(paragraphs)))
    return documents


def questions() -> list[str]:
    return [item["question"] for item in json.loads((RETRIEVAL_SET / "questions.json").read_text())]


def unit_vectors(count: int, rng: np.random.Generator) -> np.ndarray:
    vectors = rng.normal(size=(count, SPACE.dimensions)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def synthetic_store(directory: Path, chunks: int, per_document: int = 10_000) -> KnowledgeStore:
    store = KnowledgeStore(directory)
    rng = np.random.default_rng(11)
    filler = " ".join(sentences()[:12])
    for start_at in range(0, chunks, per_document):
        count = min(per_document, chunks - start_at)
        texts = [f"synthetic chunk {start_at + i}: {filler}" for i in range(count)]
        store.add_document(f"synthetic {start_at // per_document}", count * 700, texts, unit_vectors(count, rng), SPACE)
    return store


# --- measurements -----------------------------------------------------------------------------


def ingest_side_by_side(proxy_url: str, embedding_url: str, documents: list[tuple[str, str]]) -> dict:
    """Per document, interleaved so load drift on this shared machine falls on both paths alike:
    the embedding server alone on exactly the inputs the proxy will send (its chunks, title
    first, one request per document), then the whole `POST /documents`."""
    alone = through_proxy = 0.0
    chunks = 0
    with httpx.Client(timeout=900) as http:
        for title, text in documents:
            inputs = [f"{title}\n{chunk}" for chunk in split_into_chunks(text, CHUNK_WORDS, CHUNK_OVERLAP)]
            started = time.perf_counter()
            http.post(embedding_url + "/v1/embeddings", json={"input": inputs}).raise_for_status()
            alone += time.perf_counter() - started
            started = time.perf_counter()
            response = http.post(
                proxy_url + "/documents",
                json={"title": title, "text": text},
                headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            )
            response.raise_for_status()
            through_proxy += time.perf_counter() - started
            assert response.json()["chunks"] == len(inputs)
            chunks += len(inputs)
    return {
        "through_proxy": _throughput(chunks, through_proxy, documents=len(documents)),
        "embedding_server_alone": _throughput(chunks, alone),
    }


def _throughput(chunks: int, seconds: float, **extra) -> dict:
    return {**extra, "chunks": chunks, "seconds": round(seconds, 2), "chunks_per_second": round(chunks / seconds, 2)}


def store_add_only(directory: Path, chunks: int) -> dict:
    """The store alone (precomputed vectors): FAISS add + index file rewrite + SQLite rows."""
    store = KnowledgeStore(directory)
    rng = np.random.default_rng(3)
    started = time.perf_counter()
    for start_at in range(0, chunks, 20):
        store.add_document(
            f"d{start_at}", 1000, [f"chunk {start_at + i}" for i in range(20)], unit_vectors(20, rng), SPACE
        )
    return _throughput(chunks, time.perf_counter() - started)


def search_end_to_end(proxy_url: str, queries: list[str], count: int) -> dict:
    latencies = []
    with httpx.Client(timeout=60) as http:
        for query in queries[:3]:  # warm-up: connections, index load
            http.post(proxy_url + "/documents/search", json={"query": query}).raise_for_status()
        for number in range(count):
            started = time.perf_counter()
            query = queries[number % len(queries)]
            http.post(proxy_url + "/documents/search", json={"query": query}).raise_for_status()
            latencies.append(time.perf_counter() - started)
    return latency_summary(latencies)


def search_store_only(store: KnowledgeStore, count: int) -> dict:
    rng = np.random.default_rng(5)
    queries = unit_vectors(count, rng)
    store.search(queries[0], 3)  # load the index
    latencies = []
    for vector in queries:
        started = time.perf_counter()
        store.search(vector, 3)
        latencies.append(time.perf_counter() - started)
    return latency_summary(latencies)


def add_one_document(store: KnowledgeStore) -> float:
    rng = np.random.default_rng(9)
    started = time.perf_counter()
    store.add_document("one more", 1000, [f"extra {i}" for i in range(20)], unit_vectors(20, rng), SPACE)
    return round(time.perf_counter() - started, 3)


# --- the run ----------------------------------------------------------------------------------


def start_services(run_dir: Path, knowledge_dirs: dict[str, Path]) -> tuple[list[ManagedProcess], str, dict]:
    """Embedding server, gateway and one proxy per knowledge directory (one tenant each)."""
    embedding_port, gateway_port = free_port(), free_port()
    embedding_url = f"http://127.0.0.1:{embedding_port}"
    embedding_server = launchers.catalogue_model_server(
        embedding_model.EMBEDDING_MODEL_NAME,
        model_cache.MINILM_SOURCE,
        embedding_model.EMBEDDING_MODEL_NAME,
        embedding_port,
        run_dir,
        kind="embedding",
    )
    processes = [start(embedding_server)]
    embeddings_pool = {"endpoints": [embedding_url], "health_path": launchers.EMBEDDED_MODEL_HEALTH_PATH}
    config = {
        # Chat is never called here: the catalogue holds only the embedding model, on its own pool.
        "tenants": [{"name": "bench", "key_sha256": [hash_gateway_key(KEY)]}],
        "models": {SPACE.model: DEFAULT_CATALOGUE[SPACE.model]},
        "pools": {SPACE.model: embeddings_pool},
    }
    processes.append(start(launchers.gateway(config, gateway_port, run_dir, workers=2)))
    proxies = {}
    for name, directory in knowledge_dirs.items():
        port = free_port()
        proxy = {
            "tenant": f"bench-{name}",
            "system_prompt": "unused",
            "gateway_key": KEY,
            "gateway_url": f"http://127.0.0.1:{gateway_port}/v1",
            "knowledge_dir": str(directory),
            "admin_key_sha256": [sha256_hex(ADMIN_KEY)],
        }
        processes.append(start(launchers.tenant_proxy(proxy, port, run_dir, workers=2)))
        proxies[name] = f"http://127.0.0.1:{port}"
    return processes, embedding_url, proxies


def run(args: argparse.Namespace) -> dict:
    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="bench-knowledge-"))
    small_dir, large_dir = work / "knowledge-1k", work / "knowledge-100k"
    print(f"building the synthetic {args.chunks_large}-chunk index …", flush=True)
    started = time.perf_counter()
    large_store = synthetic_store(large_dir, args.chunks_large)
    build_seconds = time.perf_counter() - started
    processes, embedding_url, proxies = start_services(work, {"small": small_dir, "large": large_dir})
    try:
        documents = real_documents(args.chunks_small)
        print(f"ingest: {len(documents)} documents, embedding server alone and through the proxy …", flush=True)
        ingested = ingest_side_by_side(proxies["small"], embedding_url, documents)
        print("store alone …", flush=True)
        store_only = store_add_only(work / "store-only", args.chunks_small)
        queries = questions()
        print("retrieval …", flush=True)
        small_store = KnowledgeStore(small_dir)
        retrieval = {
            "1k": {
                "chunks": small_store.chunk_count(),
                "vectors": "real (all-MiniLM-L6-v2)",
                "end_to_end": search_end_to_end(proxies["small"], queries, args.queries),
                "store_only": search_store_only(small_store, args.queries),
            },
            "100k": {
                "chunks": large_store.chunk_count(),
                "vectors": "synthetic (random unit vectors)",
                "end_to_end": search_end_to_end(proxies["large"], queries, args.queries),
                "store_only": search_store_only(large_store, args.queries),
            },
        }
        growth = {"1k": add_one_document(small_store), "100k": add_one_document(large_store)}
    finally:
        for process in reversed(processes):
            process.stop()
    return {
        "settings": {
            "chunks_small": args.chunks_small,
            "chunks_large": args.chunks_large,
            "queries": args.queries,
            "chunk_words": CHUNK_WORDS,
            "top_k": 3,
            "embedding_model": SPACE.model,
            "dimensions": SPACE.dimensions,
            "index": "faiss IndexIDMap2(IndexFlatIP), exact",
            "proxy_workers": 2,
            "synthetic_100k_build_seconds": round(build_seconds, 1),
            "cpus": os.cpu_count(),
            "load_average_1m_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        },
        "ingest": {**ingested, "store_alone": store_only},
        "retrieval": retrieval,
        "add_20_chunk_document_seconds": growth,
    }


def write_results(results: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "knowledge.json").write_text(json.dumps(results, indent=2) + "\n")
    ingest_rows = results["ingest"]
    retrieval = results["retrieval"]
    lines = [
        "| ingest path (real text, 1k chunks) | chunks | seconds | chunks/s |",
        "|---|---|---|---|",
        *(
            f"| {label} | {ingest_rows[key]['chunks']} | {ingest_rows[key]['seconds']} | "
            f"{ingest_rows[key]['chunks_per_second']} |"
            for key, label in (
                ("through_proxy", "`POST /documents` (chunk + embed via gateway + store)"),
                ("embedding_server_alone", "embedding server alone (same inputs, interleaved)"),
                ("store_alone", "store alone (FAISS + SQLite, 20-chunk documents)"),
            )
        ),
        "",
        "| chunks in the tenant's index | vectors | search end to end p50 / p99 (ms) | store alone p50 / p99 (ms) "
        "| add one 20-chunk document (s) |",
        "|---|---|---|---|---|",
        *(
            f"| {retrieval[size]['chunks']} | {retrieval[size]['vectors']} | "
            f"{retrieval[size]['end_to_end']['p50_ms']} / {retrieval[size]['end_to_end']['p99_ms']} | "
            f"{retrieval[size]['store_only']['p50_ms']} / {retrieval[size]['store_only']['p99_ms']} | "
            f"{results['add_20_chunk_document_seconds'][size]} |"
            for size in ("1k", "100k")
        ),
    ]
    (RESULTS / "knowledge.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks-small", type=int, default=1000)
    parser.add_argument("--chunks-large", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    write_results(run(parser.parse_args()))


if __name__ == "__main__":
    main()
