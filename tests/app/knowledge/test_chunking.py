"""Splitting documents into chunks: bounded size, nothing lost, headings kept, overlap at borders."""

from __future__ import annotations

import itertools

import pytest

from app.knowledge.chunking import HEADING_WORDS, MAX_WORD_CHARACTERS, split_into_chunks


def words(count: int, prefix: str = "w") -> str:
    return " ".join(f"{prefix}{i}" for i in range(count))


def test_short_paragraphs_share_a_chunk_under_their_heading():
    text = "# Vacation\n\nYou get 28 days.\n\nAsk your manager.\n"
    assert split_into_chunks(text, 50, 5) == ["Vacation You get 28 days. Ask your manager."]


def test_long_text_is_cut_into_bounded_overlapping_chunks():
    chunks = split_into_chunks("## Section\n\n" + words(300), max_words=60, overlap_words=10)
    assert all(len(chunk.split()) <= 60 for chunk in chunks)
    assert all(chunk.startswith("Section ") for chunk in chunks)
    bodies = [chunk.split()[1:] for chunk in chunks]
    for before, after in itertools.pairwise(bodies):
        assert before[-10:] == after[:10]  # a border cuts no sentence that is not whole on one side
    covered = {word for body in bodies for word in body}
    assert covered == set(words(300).split())


def test_a_heading_starts_a_new_chunk():
    chunks = split_into_chunks("# A\n\nalpha text\n\n# B\n\nbeta text", 50, 5)
    assert chunks == ["A alpha text", "B beta text"]


def test_paragraphs_are_not_split_when_they_fit():
    first, second = words(30, "a"), words(30, "b")
    chunks = split_into_chunks(f"{first}\n\n{second}", max_words=40, overlap_words=5)
    assert chunks[0] == first
    assert chunks[1].endswith(second)


@pytest.mark.parametrize("text", ["", "   \n\n  ", "# Only a heading\n\n## And another"])
def test_no_text_no_chunks(text):
    assert split_into_chunks(text, 50, 5) == []


def test_overlap_must_be_smaller_than_the_chunk():
    with pytest.raises(ValueError):
        split_into_chunks("text", 10, 10)


def test_a_long_heading_opens_each_chunk_cut_to_a_few_words():
    heading = " ".join(f"h{i}" for i in range(5000))
    chunks = split_into_chunks(f"# {heading}\n\n" + words(600), max_words=120, overlap_words=20)
    assert all(chunk.startswith(" ".join(f"h{i}" for i in range(HEADING_WORDS)) + " w") for chunk in chunks)
    assert all(len(chunk.split()) <= 120 for chunk in chunks)


def test_words_longer_than_the_limit_come_in_pieces():
    chunks = split_into_chunks("x" * (MAX_WORD_CHARACTERS * 300), max_words=120, overlap_words=20)
    assert all(len(piece) <= MAX_WORD_CHARACTERS for chunk in chunks for piece in chunk.split())
    assert len(chunks) == 3  # 300 pieces: 120, then 100 new after each 20-word overlap, then the rest


def test_hostile_text_makes_chunks_proportional_to_its_size():
    for text in ("a " * 100_000, "a\n\n" * 60_000, "# h\n" * 50_000 + "end", "\n" * 200_000 + "word"):
        chunks = split_into_chunks(text, max_words=120, overlap_words=20)
        assert sum(len(chunk) for chunk in chunks) <= 3 * len(text)


def test_windows_line_ends_are_line_ends():
    assert split_into_chunks("# Title\r\n\r\nbody text\r\n", 50, 5) == ["Title body text"]
