"""Viva's pytest plugin, written into the sandbox beside the candidate's eval suite and loaded there with
`-p viva_eval_results` (grader/dynamic/evals.py).

It writes the results file Viva reads instead of the suite's own report: what was collected, each test's outcome,
and, around each test's call, whether the body really raised (so a conftest.py that rewrites failures into passes is
caught); `finished` is set only when the session reaches its end (an early `os._exit` leaves it unset).

Runs under the candidate's Python and pytest: standard library and pytest only, Python 3.8's syntax, an old-style
hook wrapper (the new style needs pluggy 1.2). It reads VIVA_EVAL_OUT when pytest loads it: it is a program of its
own, never imported by Viva.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Generator

OUT = os.environ["VIVA_EVAL_OUT"]
_state: dict[str, Any] = {"collected": [], "outcomes": {}, "raised": {}, "finished": False}


def _dump() -> None:
    with open(OUT, "w") as handle:
        json.dump(_state, handle)


def pytest_collection_finish(session: pytest.Session) -> None:
    _state["collected"] = [item.nodeid for item in session.items]
    _dump()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, None]:
    outcome = yield
    excinfo = outcome.excinfo
    if excinfo is None:
        _state["raised"][item.nodeid] = "no"
    elif isinstance(excinfo[1], pytest.skip.Exception):
        _state["raised"][item.nodeid] = "skip"
    else:
        _state["raised"][item.nodeid] = "yes"


@pytest.hookimpl(trylast=True)
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    previous = _state["outcomes"].get(report.nodeid)
    if report.when == "call" or report.outcome != "passed":
        if previous in (None, "passed"):
            _state["outcomes"][report.nodeid] = report.outcome
    elif previous is None:
        _state["outcomes"][report.nodeid] = "passed"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _state["finished"] = True
    _dump()
