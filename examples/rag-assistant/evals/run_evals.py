"""Run the golden set against the running service and fail when the pass rate drops below the bar.

A case passes when the answer contains the expected phrase's key words and cites the expected chunk
(or, for out-of-scope questions, says it does not know and cites nothing).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import httpx

PASS_BAR = 0.85


def key_words(text: str) -> set[str]:
    return {word.strip(".,?").lower() for word in text.split() if len(word) > 3}


def judge(case: dict, reply: dict) -> bool:
    answer = reply.get("answer", "").lower()
    cited = {citation["chunk_id"] for citation in reply.get("citations", [])}
    if case["expected_citation"] is None:
        return "know" in answer and not cited
    overlap = key_words(case["expected"]) & key_words(answer)
    return bool(overlap) and case["expected_citation"] in cited


def main(base_url: str = "http://127.0.0.1:8000") -> int:
    cases = [json.loads(line) for line in Path(__file__).with_name("golden.jsonl").read_text().splitlines() if line]
    passed = 0
    # A grader (Viva) may ask for a machine-readable results file: one JSON object per case.
    results_path = os.environ.get("VIVA_EVAL_RESULTS")
    results = open(results_path, "w") if results_path else None  # noqa: SIM115 - closed below
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for case in cases:
            reply = client.post("/ask", json={"question": case["question"]}).json()
            ok = judge(case, reply)
            passed += ok
            print(f"{'PASS' if ok else 'FAIL'} {case['id']} {case['question']}")
            if results:
                results.write(json.dumps({"id": case["id"], "passed": ok}) + "\n")
    if results:
        results.close()
    rate = passed / len(cases)
    print(f"{passed}/{len(cases)} passed ({rate:.0%}); bar {PASS_BAR:.0%}")
    return 0 if rate >= PASS_BAR else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
