"""Environment variables an app reads at start: os.environ, getenv, pydantic settings, example env files."""

from __future__ import annotations

import pytest

from grader.model import Evidence
from grader.profile.model import EnvNeed
from grader.profile.starts.env import env_needs

CONFIG = """\
import os
from os import environ as env, getenv

OPENAI_API_KEY = os.environ["OPENAI_API_KEY"]
MODEL = os.environ.get("LLM_MODEL", "gpt-4o-mini")
QDRANT_URL = os.getenv("QDRANT_URL")
TOP_K = int(getenv("TOP_K", "5"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REGION = env["AWS_REGION"]
os.environ["SET_BY_CODE"] = "1"
name = os.environ.get(dynamic_name)
"""


def test_os_environ_and_getenv_readings() -> None:
    needs = env_needs({"app/config.py": CONFIG}, {})
    assert [(need.name, need.required, need.evidence.line) for need in needs] == [
        ("OPENAI_API_KEY", True, 4),
        ("LLM_MODEL", False, 5),
        ("QDRANT_URL", False, 6),
        ("TOP_K", False, 7),
        ("TOKENIZERS_PARALLELISM", False, 8),
        ("AWS_REGION", True, 9),
    ]
    assert needs[0].evidence == Evidence("app/config.py", 4, 'OPENAI_API_KEY = os.environ["OPENAI_API_KEY"]')


SETTINGS = """\
from typing import ClassVar

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", env_file=".env")

    openai_api_key: str
    embedding_model: str = "text-embedding-3-small"
    top_k: int = Field(5, ge=1)
    qdrant_url: str = Field(...)
    anthropic_key: str = Field(alias="ANTHROPIC_API_KEY")
    chunk_size: int = Field(default=800)
    allowed: list[str] = Field(default_factory=list)
    VERSION: ClassVar[str] = "1"
    _cache: dict = {}


class ProdSettings(Settings):
    sentry_dsn: str | None = None
"""


def test_base_settings_fields_with_prefix_alias_and_defaults() -> None:
    needs = {need.name: need for need in env_needs({"src/rag/settings.py": SETTINGS}, {})}
    assert {name: need.required for name, need in needs.items()} == {
        "RAG_OPENAI_API_KEY": True,
        "RAG_EMBEDDING_MODEL": False,
        "RAG_TOP_K": False,
        "RAG_QDRANT_URL": True,
        "ANTHROPIC_API_KEY": True,
        "RAG_CHUNK_SIZE": False,
        "RAG_ALLOWED": False,
        "RAG_SENTRY_DSN": False,
    }
    assert needs["RAG_OPENAI_API_KEY"].evidence == Evidence("src/rag/settings.py", 10, "openai_api_key: str")


def test_inner_config_prefix_and_case_sensitive_settings() -> None:
    source = "from pydantic import BaseSettings\n\nclass Config(BaseSettings):\n    db_url: str\n    class Config:\n        env_prefix = 'app_'\n        case_sensitive = True\n"
    [need] = env_needs({"settings.py": source}, {})
    assert (need.name, need.required) == ("app_db_url", True)


def test_example_files_mask_secrets_and_merge_with_code() -> None:
    example = (
        "# Copy to .env\n"
        "export OPENAI_API_KEY=sk-proj-abc123\n"
        'QDRANT_URL="http://localhost:6333"  # local qdrant\n'
        "LLM_MODEL='gpt-4o'\n"
        "LOG_LEVEL=info # verbose\n"
        "not a variable line\n"
        "\n"
        "QDRANT_URL=http://second\n"
    )
    code = "import os\nos.getenv('QDRANT_URL')\nos.environ.get('LLM_MODEL', 'gpt-4o-mini')\nkey = os.environ['OPENAI_API_KEY']\n"
    needs = env_needs({"app.py": code}, {".env.example": example, "backend/.env.sample": "QDRANT_URL=x\nEXTRA=1\n"})
    assert needs == [
        EnvNeed("QDRANT_URL", Evidence("app.py", 2, "os.getenv('QDRANT_URL')"), True, "http://localhost:6333"),
        EnvNeed("LLM_MODEL", Evidence("app.py", 3, "os.environ.get('LLM_MODEL', 'gpt-4o-mini')"), False, "gpt-4o"),
        EnvNeed("OPENAI_API_KEY", Evidence("app.py", 4, "key = os.environ['OPENAI_API_KEY']"), True, "sk-proj-abc123"),
        EnvNeed("LOG_LEVEL", Evidence(".env.example", 5, "LOG_LEVEL=info"), True, "info"),
        EnvNeed("EXTRA", Evidence("backend/.env.sample", 2, "EXTRA=1"), True, "1"),
    ]


def test_example_only_secret_is_masked_in_the_excerpt() -> None:
    [key, token] = env_needs({}, {".env.example": "OPENAI_API_KEY=sk-...\nHF=hf_abcdef\n"})
    assert key.evidence.excerpt == "OPENAI_API_KEY=***" and key.example == "sk-..."
    assert token.evidence.excerpt == "HF=***"


def test_strongest_reading_wins_and_first_reading_is_the_evidence() -> None:
    files = {"a.py": "import os\nos.getenv('DB_URL', 'sqlite://')\n", "b.py": "import os\nos.environ['DB_URL']\n"}
    [need] = env_needs(files, {})
    assert (need.required, need.evidence.path) == (True, "a.py")


def test_test_files_are_skipped() -> None:
    reading = "import os\nos.environ['TEST_ONLY']\n"
    files = {
        "tests/test_api.py": reading,
        "test_x.py": reading,
        "conftest.py": reading,
        "pkg/tests/helpers.py": reading,
    }
    assert env_needs(files, {}) == []


@pytest.mark.parametrize(
    "source",
    ["\x00\xff binary", "def broken(:\n", "x = " + "[" * 20_000 + "]" * 20_000, "os.environ[" * 1000],
)
def test_hostile_python_never_raises(source: str) -> None:
    assert env_needs({"app.py": source}, {}) == []


def test_hostile_example_files_never_raise() -> None:
    junk = "\x00\xff=\n" + "A" * 100_000 + "\n=novalue\n'\n" + 'Q="unterminated\n' + "K=v\n" * 10_000
    needs = env_needs({}, {".env.example": junk})
    assert [(need.name, need.example) for need in needs] == [("Q", "unterminated"), ("K", "v")]
