"""No rule may name the development corpus: Viva is measured on repositories it has never seen, so a rule that knows
a corpus repository by its name, its owner, or a path or string only it has would be tuning, not generalising.

Scans every file of grader/ and rubrics/ (code, templates, YAML) for each corpus repository's owner/name, its
checkout folder name, and its repository name where that name is distinctive (long and not an ordinary word).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("grader", "rubrics")
ORDINARY = re.compile(r"^(?:chat|rag|langgraph|llama2|cookbook|summarizer|rags)$", re.I)
"""Repository names that are ordinary words a rule may well contain for its own reasons."""
VENDORS = {"openai", "anthropics", "docker", "wandb", "chainlit", "langchain-ai", "run-llama", "azure-samples",
           "crewaiinc", "neo4j-examples", "dataprofessor"}  # fmt: skip
"""Owners that are vendors or libraries a rule may name (`openai`), unless as `owner/name`."""


def corpus_names() -> set[str]:
    repos = tomllib.loads((ROOT / "bench" / "corpus" / "repos.toml").read_text())["repo"]
    names: set[str] = set()
    for repo in repos:
        owner, name = repo["name"].split("/")
        names |= {repo["name"].lower(), f"{owner}+{name}".lower()}
        if len(name) >= 8 and not ORDINARY.match(name):
            names.add(name.lower())
        if len(owner) >= 6 and owner.lower() not in VENDORS:
            names.add(owner.lower())
    return names


def scanned_files() -> list[Path]:
    return [
        path
        for folder in SCANNED
        for path in sorted((ROOT / folder).rglob("*"))
        if path.is_file() and path.suffix in {".py", ".yaml", ".yml", ".json", ".j2", ".md", ".toml", ".txt"}
    ]


def test_the_corpus_list_is_what_is_scanned_for() -> None:
    names = corpus_names()
    assert len(names) > 100 and "langchain-ai/opengpts" in names and "fitness-assistant" in names


def test_no_rule_names_a_corpus_repository() -> None:
    names = corpus_names()
    pattern = re.compile("|".join(sorted((re.escape(name) for name in names), key=len, reverse=True)))
    found = []
    for path in scanned_files():
        text = path.read_text(errors="replace").lower()
        for match in pattern.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append(f"{path.relative_to(ROOT)}:{line}: {match.group(0)}")
    assert not found, found
