"""Splitting a document into chunks the embedding model reads whole.

all-MiniLM-L6-v2 reads at most 256 word pieces, roughly 180 English words. Chunks of
about `max_words` words (default 120) stay inside that window; where a paragraph
has to be cut, neighbouring chunks share `overlap_words` words, so the text around
the cut is read in context on both sides. Paragraphs are kept together while they fit. A markdown heading starts a
new section, and its text opens every chunk of that section, so each chunk says what
it is about.
"""

from __future__ import annotations

import re
from typing import Iterator

HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")


def split_into_chunks(text: str, max_words: int, overlap_words: int) -> list[str]:
    """Chunks of at most `max_words` words (heading included); an empty list for text without words."""
    if overlap_words >= max_words:
        raise ValueError("overlap_words must be smaller than max_words")
    chunks: list[str] = []
    for heading, paragraphs in _sections(text):
        chunks.extend(_pack(heading.split(), paragraphs, max_words, overlap_words))
    return chunks


def _sections(text: str) -> Iterator[tuple[str, list[list[str]]]]:
    """(heading, paragraphs as word lists) per section; text before any heading has heading ''."""
    heading, paragraphs, paragraph = "", [], []
    for line in text.splitlines():
        match = HEADING.match(line)
        if match or not line.strip():
            if paragraph:
                paragraphs.append(paragraph)
                paragraph = []
            if match:
                if paragraphs:
                    yield heading, paragraphs
                heading, paragraphs = match.group(1), []
            continue
        paragraph.extend(line.split())
    if paragraph:
        paragraphs.append(paragraph)
    if paragraphs:
        yield heading, paragraphs


def _pack(heading: list[str], paragraphs: list[list[str]], max_words: int, overlap_words: int) -> Iterator[str]:
    # A very long heading still leaves room for text.
    budget = max(max_words - len(heading), max_words // 2)
    overlap = min(overlap_words, budget - 1)
    window: list[str] = []
    fresh = 0  # words in the window that no chunk has carried yet
    for paragraph in paragraphs:
        if fresh and len(window) + len(paragraph) > budget:
            yield " ".join(heading + window)
            window, fresh = window[len(window) - overlap:] if overlap else [], 0
        window.extend(paragraph)
        fresh += len(paragraph)
        while len(window) > budget:
            yield " ".join(heading + window[:budget])
            window = window[budget - overlap:]
            fresh = min(fresh, len(window) - overlap) if overlap else len(window)
    if fresh > 0:
        yield " ".join(heading + window)
