"""The corpus table from results graded under several Viva keys: each repository's row from the first key (in the
order given) that graded it. For a run done in parts — everything at one key, the rows a later fix touched re-graded
at the next — so BENCHMARKS.md can show the newest grading of every repository and say which key each came from.

Usage: .venv/bin/python scripts/corpus-table.py <newest key> [<older key> ...]   (keys: .corpus/results/<key>/)
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpus_bench import REPOS_TOML, RESULTS, _cached_row, load_repos, markdown_table, summary_lines


def main(keys: list[str]) -> int:
    repos, problems = load_repos(REPOS_TOML)
    if problems or not keys:
        print("\n".join(problems) or __doc__)
        return 2
    rows, source = [], Counter[str]()
    for repo in repos:
        for key in keys:
            row = _cached_row(repo, RESULTS / key / repo.slug)
            if row is not None:
                rows.append(row)
                source[key] += 1
                break
    print("\n".join(markdown_table(rows)))
    print()
    print("\n".join(summary_lines(rows)))
    print()
    print("rows per key: " + ", ".join(f"{key} {count}" for key, count in source.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
