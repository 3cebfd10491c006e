"""A red run ends with pytest's summary of what failed, never an INTERNALERROR (tests/failure_reports.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# AST conversions in four threads while the garbage collector's callbacks run Python code in the middle of
# them: on CPython 3.11 before python/cpython#106905 was fixed, a few seconds of this raise
# "SystemError: AST constructor recursion depth mismatch" in some threads, and in pytest's own if it is
# writing a report at that moment.
RACING_THREADS = """
import ast, difflib, gc, pathlib, random, threading

import pytest

SOURCE = pathlib.Path(__file__).read_text() * 20
collisions = []

def busy_collector(phase, info):
    a = [str(random.randint(0, 9)) for _ in range(100)]
    list(difflib.unified_diff(a, sorted(a)))

def parse_repeatedly(rounds):
    for _ in range(rounds):
        try:
            ast.parse(SOURCE)
        except SystemError as error:
            collisions.append(str(error))

@pytest.fixture(scope="module", autouse=True)
def racing_threads():
    gc.callbacks.append(busy_collector)
    threads = [threading.Thread(target=parse_repeatedly, args=(80,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    yield
    for thread in threads:
        thread.join()
    gc.callbacks.remove(busy_collector)
    pathlib.Path("collisions.txt").write_text(str(len(collisions)))

def nested(depth):
    if depth == 0:
        assert {"answer": 41, "items": [1, 2, 3]} == {"answer": 42, "items": [1, 2, 4]}
    nested(depth - 1)

@pytest.mark.parametrize("attempt", range(40))
def test_fails_while_threads_parse(attempt):
    nested(5)
"""

# What the fault did to pytest, made certain: each parse pytest makes to write a report fails.
PARSING_FAILS = """
import ast
import sys

parse = ast.parse

def parse_failing_for_reports(*args, **kwargs):
    if sys._getframe(1).f_code.co_name == "getstatementrange_ast":
        raise SystemError("AST constructor recursion depth mismatch (before=33, after=52)")
    return parse(*args, **kwargs)

ast.parse = parse_failing_for_reports
"""

FAILING_TEST = """
def test_adds_up():
    total = 1 + 1
    assert total == 3, "one and one"

def test_passes():
    assert True
"""


def run_pytest(directory: Path, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rf", *arguments],
        cwd=directory,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def write(directory: Path, name: str, text: str) -> None:
    (directory / name).write_text(textwrap.dedent(text))


def test_failures_reported_while_other_threads_parse_source_end_in_a_summary(tmp_path):
    write(tmp_path, "test_racing.py", RACING_THREADS)
    result = run_pytest(tmp_path, "-p", "tests.failure_reports")
    assert "INTERNALERROR" not in result.stdout + result.stderr, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.rstrip().splitlines()[-1].startswith("40 failed"), result.stdout[-2000:]
    assert (tmp_path / "collisions.txt").read_text() == "0", "an AST conversion still collided with another"


def test_a_report_that_cannot_be_formatted_is_reported_plainly_and_the_run_goes_on(tmp_path):
    write(tmp_path, "conftest.py", PARSING_FAILS)
    write(tmp_path, "test_sums.py", FAILING_TEST)

    unprotected = run_pytest(tmp_path)
    assert "INTERNALERROR" in unprotected.stdout + unprotected.stderr  # what the fault does without the plugin

    result = run_pytest(tmp_path, "-p", "tests.failure_reports")
    output = result.stdout + result.stderr
    assert "INTERNALERROR" not in output, output[-3000:]
    assert result.returncode == 1
    assert "pytest could not format this report: SystemError: AST constructor recursion depth mismatch" in output
    assert 'in test_adds_up\n    assert total == 3, "one and one"\nAssertionError: one and one' in output
    assert "FAILED test_sums.py::test_adds_up" in output
    assert result.stdout.rstrip().splitlines()[-1].startswith("1 failed, 1 passed")
