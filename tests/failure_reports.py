"""A failing test's report can always be written, so a red run ends with pytest's summary, never an INTERNALERROR.

Why it could not be: CPython 3.11 before the fix of python/cpython#106905 keeps one AST-conversion recursion
counter per interpreter, not per call. When two threads build AST objects at once (`ast.parse`), and one is
switched out in the middle (a garbage-collection callback or a finalizer runs Python code there), the
other's counter is disturbed and `ast.parse` raises `SystemError: AST constructor recursion depth mismatch`.
pytest parses the failing test's source to write its report (in the main thread), while the servers our
end-to-end tests run in threads format tracebacks of their own (Python 3.11's `traceback` parses each
source line for its `^^^` markers). One such collision ended a whole run.

So, in the test process:
- every `ast.parse` holds one lock: no two AST conversions overlap, which is the cause;
- should writing a report fail all the same, the report falls back to a plain traceback (no source parsing)
  that names what could not be formatted, and the run goes on.

Loaded by tests/conftest.py; another run can load it with `-p tests.failure_reports`.
"""

from __future__ import annotations

import ast
import threading
import traceback
from pathlib import Path

import _pytest
import pluggy
import pytest
from _pytest.reports import CollectReport, TestReport

_AST_CONVERSION = threading.RLock()
_unserialized_parse = ast.parse


def _serialized_parse(*args, **kwargs):
    with _AST_CONVERSION:
        return _unserialized_parse(*args, **kwargs)


ast.parse = _serialized_parse  # for the whole test process, from its import on


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> TestReport:
    try:
        return (yield)
    except Exception as error:  # the report itself could not be written
        return _plain_report(item, call, error)


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> CollectReport:
    try:
        return (yield)
    except Exception as error:  # collecting failed, and so did writing why
        return CollectReport(
            collector.nodeid,
            "failed",
            f"(pytest could not format why collecting {collector.nodeid} failed: {type(error).__name__}: {error})",
            [],
        )


def _plain_report(item: pytest.Item, call: pytest.CallInfo, error: Exception) -> TestReport:
    """Failed, whatever the test did: something went wrong and the run must show it."""
    excinfo = call.excinfo
    text = plain_traceback(excinfo.tb, excinfo.value) if excinfo else ""
    note = f"(pytest could not format this report: {type(error).__name__}: {error}; a plain traceback follows)"
    sections = [(f"Captured {key} {when}", content) for when, key, content in item._report_sections]
    return TestReport(
        item.nodeid,
        item.location,
        dict.fromkeys(item.keywords, 1),
        "failed",
        f"{note}\n{text}",
        call.when,
        sections=sections,
        duration=call.duration,
        start=call.start,
        stop=call.stop,
        user_properties=item.user_properties,
    )


_RUNNER_DIRECTORIES = tuple(str(Path(module.__file__).parent) for module in (_pytest, pluggy))


def plain_traceback(tb, value: BaseException) -> str:
    """File, line and source text of each frame from the test's own on (pytest's and pluggy's before it are
    left out, as pytest does), then the exception: nothing here parses source."""
    frames = traceback.extract_tb(tb)
    ours = [i for i, frame in enumerate(frames) if not frame.filename.startswith(_RUNNER_DIRECTORIES)]
    lines = []
    for frame in frames[ours[0] if ours else 0 :]:
        lines.append(f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}')
        if frame.line:
            lines.append(f"    {frame.line.strip()}")
    try:
        message = str(value)
    except Exception as error:  # an exception whose str() fails still gets a report
        message = f"<str() failed: {type(error).__name__}>"
    lines.append(f"{type(value).__name__}: {message}")
    return "\n".join(lines)
