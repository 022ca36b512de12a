"""Prose and build files: README sections, Dockerfiles, Procfiles, prompt files, and text addressed to the grader."""

from __future__ import annotations

import re

import re2  # type: ignore[import-untyped]

from grader.model import Evidence

SECTION_KINDS: dict[str, re.Pattern[str]] = {
    "setup": re.compile(r"install|set ?up|getting started|quick ?start|prerequisite|requirements", re.I),
    "usage": re.compile(r"usage|running|how to (use|run)|\brun\b|example|quick ?start|\bapi\b|endpoints?", re.I),
    "configuration": re.compile(r"config|environment|settings|\benv\b|variables", re.I),
    "evaluation": re.compile(r"eval|benchmark|golden|metrics|quality", re.I),
    "architecture": re.compile(r"architecture|design|how it works|overview|components|trade-?offs", re.I),
    "testing": re.compile(r"\btest", re.I),
}

# Text addressed to a grader, reviewer or AI evaluator: recorded and flagged, never obeyed, never credit.
# RE2 (linear time) because it runs over whole files of untrusted text.
GRADER_ADDRESSED = re2.compile(
    r"(?im)\b(ignore|disregard|override|forget)\b[^\n]{0,40}\b(rubric|grading|grader|evaluator|scoring|instructions? "
    r"(to|for) (the )?(grader|reviewer|evaluator))\b"
    r"|\b(give|award|assign|grant)\b[^\n]{0,30}\b(full|maximum|max|perfect|top|highest)\s+(marks|score|points|credit|grade)"
    r"|\b(ai|llm|automated|automatic)[ -](grader|evaluator|reviewer|judge|assessor|grading)s?\b"
    r"|\b(note|message|attention|instructions?)\s+(to|for)\s+(the\s+|any\s+)?(grader|evaluator|reviewer|ai|llm|judge)\b"
    r"|\bscore\s+(this|me|it|the project)\b[^\n]{0,20}\d+\s*/\s*\d+"
    r"|\b(10|100)\s*/\s*(10|100)\b[^\n]{0,30}\b(score|marks|rating)"
    r"|^\s*(#|//|<!--)?\s*(system|assistant)\s*:\s*you are"
)

# Literal anchors that every GRADER_ADDRESSED match contains; build.py screens whole files with them first.
GRADER_SCREEN_WORDS = (
    rb"(?i:rubric|grading|grader|evaluator|reviewer|judge|assessor|"
    rb"(?:full|maximum|max|perfect|top|highest)\s+(?:marks|score|points|credit|grade)|"
    rb"(?:to|for)\s+(?:the\s+|any\s+)?(?:ai|llm)\b|score\s+(?:this|me|it|the project)|"
    rb"\b(?:10|100)\s*/\s*(?:10|100)\b|(?:system|assistant)\s*:\s*you are)"
)

_HEADING_MD = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_RST_UNDERLINE = re.compile(r"^([=\-~^*#])\1{2,}\s*$")
_DOCKER_COMMAND = re.compile(r"^\s*(CMD|ENTRYPOINT)\b", re.I)
PROMPT_EXTENSIONS = (".prompt", ".jinja", ".j2", ".tmpl", ".mustache")


def is_readme(path: str) -> bool:
    return "/" not in path and path.lower().split(".")[0] == "readme"


SECTION_CONTENT: dict[str, re.Pattern[str]] = {
    "setup": re.compile(
        r"\b(pip3? install|poetry install|uv (sync|pip install)|pipenv install|conda (env )?create|npm (ci|install)|"
        r"git clone|docker[- ]compose up|docker build)\b",
        re.I,
    ),
    "usage": re.compile(
        r"\bcurl\s+(-\w+\s+)*\S*(localhost|127\.0\.0\.1|http)|https?://(localhost|127\.0\.0\.1)[:/]|"
        r"^\s*(\$\s*)?(uvicorn|gunicorn|streamlit run|flask run|chainlit run|python3? [\w./-]+\.py|"
        r"make (run|start|serve))\b|"
        r"\b(POST|GET) /\w",
        re.I,
    ),
    "configuration": re.compile(r"^\s*(export\s+)?[A-Z][A-Z0-9_]{3,}=|\.env\b|environment variables?", re.I),
    "evaluation": re.compile(
        r"\b(pytest\b.*eval|evals?/|golden|ragas|deepeval|promptfoo|recall@\d|hit rate|\bMRR\b|faithfulness|"
        r"llm[- ]as[- ]a?[- ]?judge)",
        re.I,
    ),
    "testing": re.compile(r"^\s*(\$\s*)?(pytest|python -m pytest|make test|npm test)\b", re.I),
}
"""What a section contains, whatever its heading says: install commands are setup, a request to the running app
is usage, variables to set are configuration, an eval run is evaluation."""


def readme_sections(path: str, text: str) -> dict[str, Evidence]:
    """The kinds of section a README has: by heading, else by what its lines contain (a "Run" section that says
    `pip install -r requirements.txt` is setup)."""
    sections = _sections_by_heading(path, text)
    for number, line in enumerate(text.splitlines(), start=1):
        for kind, pattern in SECTION_CONTENT.items():
            if kind not in sections and pattern.search(line):
                sections[kind] = Evidence(path, number, line.strip()[:200], f"{kind}, by what the line says")
    return sections


def _sections_by_heading(path: str, text: str) -> dict[str, Evidence]:
    sections: dict[str, Evidence] = {}
    lines = text.splitlines()
    for number, line in enumerate(lines, start=1):
        heading, heading_line = None, number
        match = _HEADING_MD.match(line)
        if match and len(match[1]) >= 2:
            heading = match[2]
        elif number > 1 and _RST_UNDERLINE.match(line) and lines[number - 2].strip():
            heading, heading_line = lines[number - 2].strip(), number - 1
        if heading is None:
            continue
        for kind, pattern in SECTION_KINDS.items():
            if kind not in sections and pattern.search(heading):
                sections[kind] = Evidence(path, heading_line, lines[heading_line - 1].strip()[:200])
    return sections


def is_dockerfile(path: str) -> bool:
    name = path.rsplit("/", 1)[-1].lower()
    return name == "dockerfile" or name.startswith("dockerfile.") or name.endswith(".dockerfile")


def is_compose(path: str) -> bool:
    return path.rsplit("/", 1)[-1].lower() in {
        "docker-compose.yml",
        "docker-compose.yaml",
        "compose.yml",
        "compose.yaml",
    }


def docker_commands(path: str, text: str) -> list[Evidence]:
    return [
        Evidence(path, number, line.strip()[:200])
        for number, line in enumerate(text.splitlines(), start=1)
        if _DOCKER_COMMAND.match(line)
    ]


def procfile_web(path: str, text: str) -> Evidence | None:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("web:"):
            return Evidence(path, number, line.strip()[:200])
    return None


def is_prompt_file(path: str, text: str) -> bool:
    lower = path.lower()
    if lower.endswith(PROMPT_EXTENSIONS):
        return True
    name = lower.rsplit("/", 1)[-1]
    named = "prompt" in name and not name.startswith("readme")  # system_prompt.txt, qa-prompt.md
    in_prompt_dir = "prompts/" in lower or lower.startswith("prompts") or "/prompt" in lower
    return (in_prompt_dir or named) and lower.endswith((".txt", ".md", ".yaml", ".yml", ".j2", ".jinja", ".jinja2"))


def grader_addressed(path: str, text: str, limit: int) -> list[Evidence]:
    found: list[Evidence] = []
    if not GRADER_ADDRESSED.search(text):  # one scan of the whole text; most files stop here
        return found
    for number, line in enumerate(text.splitlines(), start=1):
        if GRADER_ADDRESSED.search(line):
            found.append(Evidence(path, number, line.strip()[:200], "addresses the grader"))
            if len(found) >= limit:
                break
    return found
