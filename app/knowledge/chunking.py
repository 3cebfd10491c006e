"""Splitting a document into chunks the embedding model reads whole, in memory linear in its size.

all-MiniLM-L6-v2 reads at most 256 word pieces, roughly 180 English words. Chunks of
about `max_words` words (default 120) stay inside that window; where a paragraph
has to be cut, neighbouring chunks share `overlap_words` words, so the text around
the cut is read in context on both sides. Paragraphs are kept together while they fit.
A markdown heading starts a new section, and its first `HEADING_WORDS` words open every
chunk of that section, so each chunk says what it is about.

Hostile documents stay cheap: the text is walked once, word by word, without splitting it
into lists of lines or words; a heading is cut to `HEADING_WORDS` words and a "word" (a URL,
base64, a line without spaces) to `MAX_WORD_CHARACTERS` characters, so a chunk is never
longer than (HEADING_WORDS + max_words) * MAX_WORD_CHARACTERS characters, and the chunks
of a document add up to a small multiple of its size. Chunks come one at a time, so a caller
can stop (and refuse the document) once there are too many.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import islice

HEADING_WORDS = 12
MAX_WORD_CHARACTERS = 64
MAX_HEADING_INDENT = 3
MAX_HEADING_LEVEL = 6
WORD = re.compile(r"\S+")
# One pass over the text: a heading line, a run of blank lines, or a word. Each alternative is
# linear (no nested repetition), so a hostile line costs its length, once.
TOKEN = re.compile(r"(?m)(?P<heading>^ {0,3}#{1,6}[^\S\n][^\n]*$)|(?P<blank>\n(?:[^\S\n]*\n)+)|(?P<word>\S+)")


def split_into_chunks(text: str, max_words: int, overlap_words: int) -> list[str]:
    """Chunks of at most `max_words` words (heading included); an empty list for text without words."""
    if overlap_words >= max_words:
        raise ValueError("overlap_words must be smaller than max_words")
    return list(iter_chunks(text, max_words, overlap_words))


def iter_chunks(text: str, max_words: int, overlap_words: int) -> Iterator[str]:
    """The chunks of `split_into_chunks`, one at a time."""
    packer = _Packer([], max_words, overlap_words)
    tokens = _Pushback(_tokens(text))
    for token in tokens:
        if isinstance(token, _Heading):
            yield from packer.finish()
            packer = _Packer(token.words, max_words, overlap_words)
        elif token is PARAGRAPH_BREAK:
            packer.paragraph_start = True
        elif packer.paragraph_start:
            # Does the paragraph still fit? Its first budget + 1 words are enough to tell.
            lookahead = [token]
            for after in tokens:
                if not isinstance(after, str) or len(lookahead) > packer.budget:
                    tokens.push_back(after)
                    break
                lookahead.append(after)
            yield from packer.start_paragraph(lookahead)
        else:
            yield from packer.add(token)
    yield from packer.finish()


def heading_text(line: str) -> str | None:
    """The text of a markdown ATX heading line (`## Title ##`), or None for any other line."""
    return _heading_at(line, 0, len(line))


class _Packer:
    """Packs one section's words into chunks, holding at most one chunk's worth of words."""

    def __init__(self, heading: list[str], max_words: int, overlap_words: int):
        self.heading = heading
        # A very long heading still leaves room for text.
        self.budget = max(max_words - len(heading), max_words // 2)
        self.overlap = min(overlap_words, self.budget - 1)
        self.window: list[str] = []
        self.fresh = 0  # words in the window that no chunk has carried yet
        self.paragraph_start = True

    def start_paragraph(self, lookahead: list[str]) -> Iterator[str]:
        """A paragraph's first words: the chunk so far ends here if the paragraph does not fit in it."""
        self.paragraph_start = False
        if self.fresh and len(self.window) + len(lookahead) > self.budget:
            yield self._chunk(self.window)
            self.window = self.window[len(self.window) - self.overlap :] if self.overlap else []
            self.fresh = 0
        for word in lookahead:
            yield from self.add(word)

    def add(self, word: str) -> Iterator[str]:
        self.window.append(word)
        self.fresh += 1
        if len(self.window) > self.budget:
            yield self._chunk(self.window[: self.budget])
            self.window = self.window[self.budget - self.overlap :]
            self.fresh = min(self.fresh, len(self.window) - self.overlap) if self.overlap else len(self.window)

    def finish(self) -> Iterator[str]:
        if self.fresh > 0:
            yield self._chunk(self.window)
        self.window, self.fresh = [], 0

    def _chunk(self, words: list[str]) -> str:
        return " ".join(self.heading + words)


class _Heading:
    def __init__(self, words: list[str]):
        self.words = words


PARAGRAPH_BREAK = object()


class _Pushback:
    """An iterator that can take back the one item it gave too many."""

    def __init__(self, items: Iterator):
        self._items = items
        self._returned: list = []

    def __iter__(self) -> _Pushback:
        return self

    def __next__(self):
        return self._returned.pop() if self._returned else next(self._items)

    def push_back(self, item) -> None:
        self._returned.append(item)


def _tokens(text: str) -> Iterator[str | _Heading | object]:
    """The document as a stream: words, PARAGRAPH_BREAK for blank lines, a _Heading per heading line."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    for match in TOKEN.finditer(text):
        token = match.group()
        if match.lastgroup == "word":
            if len(token) <= MAX_WORD_CHARACTERS:
                yield token
            else:
                yield from (token[i : i + MAX_WORD_CHARACTERS] for i in range(0, len(token), MAX_WORD_CHARACTERS))
        elif match.lastgroup == "blank":
            yield PARAGRAPH_BREAK
        else:
            heading = _heading_at(token, 0, len(token)) or ""
            yield _Heading(list(islice(_words(heading, 0, len(heading)), HEADING_WORDS)))


def _words(text: str, start: int, end: int) -> Iterator[str]:
    """The words of text[start:end]; a word longer than MAX_WORD_CHARACTERS comes in pieces."""
    for match in WORD.finditer(text, start, end):
        word = match.group()
        if len(word) <= MAX_WORD_CHARACTERS:
            yield word
        else:
            yield from (word[i : i + MAX_WORD_CHARACTERS] for i in range(0, len(word), MAX_WORD_CHARACTERS))


def _heading_at(text: str, start: int, end: int) -> str | None:
    """A markdown ATX heading's text (1-6 '#', a space, the text, optional closing '#'), else None.

    Parsed by hand, not with a regular expression: a heading line can be megabytes long."""
    position = start
    while position < end and position - start <= MAX_HEADING_INDENT and text[position] == " ":
        position += 1
    if position - start > MAX_HEADING_INDENT or position >= end or text[position] != "#":
        return None
    level = 0
    while position < end and text[position] == "#":
        level, position = level + 1, position + 1
    if level > MAX_HEADING_LEVEL or position >= end or not text[position].isspace():
        return None
    title = text[position:end].strip()
    closed = title.rstrip("#").rstrip()
    return (closed or title) or None
