"""Starts Viva infers from code: pyproject scripts, `python -m` packages, `__main__` blocks, app objects, ports."""

from __future__ import annotations

import pytest

from grader.model import Evidence
from grader.profile.starts.inferred import app_object_starts, framework_port, module_main_starts, pyproject_starts


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("uvicorn app.main:app --reload", (8000, "the framework's default")),
        ("uvicorn app.main:app --port 8001", (8001, "the command")),
        ("uvicorn app.main:app --port=8002", (8002, "the command")),
        ("uvicorn app.main:app --port ${PORT:-7000}", (7000, "the command's default")),
        ("uvicorn app.main:app --port $PORT", (None, "")),
        ('uvicorn app.main:app --port "$PORT"', (None, "")),
        ("gunicorn -w 4 -b 0.0.0.0:9000 app:app", (9000, "the command")),
        ("gunicorn --bind=:9001 app:app", (9001, "the command")),
        ("gunicorn -p app.pid app:app", (8000, "the framework's default")),
        ("gunicorn --bind 0.0.0.0:${PORT:-5005} wsgi:app", (5005, "the command's default")),
        ("flask run", (5000, "the framework's default")),
        ("flask --app rag run -p 5001", (5001, "the command")),
        ("quart run", (5000, "the framework's default")),
        ("fastapi dev src/main.py", (8000, "the framework's default")),
        ("python manage.py runserver", (8000, "the framework's default")),
        ("python manage.py runserver 0.0.0.0:8010", (8010, "the command")),
        ("python manage.py runserver 8011", (8011, "the command")),
        ("streamlit run ui.py", (8501, "the framework's default")),
        ("streamlit run ui.py --server.port 8502", (8502, "the command")),
        ("chainlit run app.py", (8000, "the framework's default")),
        ("gradio demo.py", (7860, "the framework's default")),
        ("litestar --app app:app run", (8000, "the framework's default")),
        ("hypercorn app:app -b 127.0.0.1:8443", (8443, "the command")),
        ("daphne -p 8005 proj.asgi:application", (8005, "the command")),
        ("granian --interface asgi --port 8006 app:app", (8006, "the command")),
        ("APP_ENV=dev poetry run python -m uvicorn app:app", (8000, "the framework's default")),
        ("python app.py", (None, "")),
        ("make run", (None, "")),
        ("flask db upgrade", (None, "")),
        ("uvicorn 'unbalanced", (8000, "the framework's default")),
        ("", (None, "")),
    ],
)
def test_framework_port(command: str, expected: tuple[int | None, str]) -> None:
    assert framework_port(command) == expected


# --- pyproject scripts ---------------------------------------------------------------------------------------------

PEP621 = """\
[project]
name = "rag-assistant"
dependencies = ["fastapi", "uvicorn"]

[project.scripts]
rag-ingest = "rag.ingest:main"
rag = "rag.cli:main"
rag-serve = "rag.server:serve"
"""

SRC_FILES = {
    "src/rag/__init__.py": "",
    "src/rag/server.py": "import uvicorn\n\n\ndef serve():\n    uvicorn.run('rag.api:app', host='0.0.0.0', port=8100)\n",
    "src/rag/cli.py": "def main():\n    print('hello')\n",
    "src/rag/ingest.py": "def main():\n    pass\n",
}


def test_pep621_scripts_in_a_src_layout_servers_first_cli_tools_skipped() -> None:
    serve, cli = pyproject_starts("pyproject.toml", PEP621, SRC_FILES)
    assert serve.command == 'python -c "import sys; from rag.server import serve; sys.exit(serve())"'
    assert (serve.source, serve.tier, serve.workdir) == ("pyproject script rag-serve", "inferred", "src")
    assert (serve.port, serve.port_source) == (8100, "the code")
    assert serve.evidence == Evidence("pyproject.toml", 8, 'rag-serve = "rag.server:serve"')
    assert "the code binds host '0.0.0.0'" in serve.notes
    assert cli.source == "pyproject script rag" and cli.port is None


def test_poetry_scripts_in_a_subdirectory_ranked_by_name() -> None:
    text = '[tool.poetry]\nname = "api"\n\n[tool.poetry.scripts]\nmigrate = "api.db:migrate"\nhelper = "api.tools:helper"\nstart = "api.main:start"\n'
    files = {"backend/api/main.py": "def start():\n    import os\n", "backend/api/tools.py": "def helper(): ...\n"}
    start, helper = pyproject_starts("backend/pyproject.toml", text, files)
    assert (start.source, start.workdir, start.evidence.line) == ("pyproject script start", "backend", 7)
    assert helper.source == "pyproject script helper"


def test_pyproject_with_missing_module_or_bad_toml() -> None:
    [start] = pyproject_starts("pyproject.toml", '[project.scripts]\nweb = "webapp.main:run"\n', {})
    assert "module webapp.main is not among the repository's Python files" in start.notes
    assert pyproject_starts("pyproject.toml", "[project\nscripts = ", {}) == []
    assert pyproject_starts("pyproject.toml", '[project.scripts]\nbad = "no colon here"\n', {}) == []


# --- python -m and __main__ blocks ---------------------------------------------------------------------------------


def test_package_main_runs_with_python_m_from_the_package_parent() -> None:
    files = {
        "src/rag/__init__.py": "",
        "src/rag/api.py": "from fastapi import FastAPI\napp = FastAPI()\n",
        "src/rag/__main__.py": 'import os\nimport uvicorn\n\nuvicorn.run("rag.api:app", port=int(os.environ.get("PORT", 8000)), host="0.0.0.0")\n',
    }
    [start] = module_main_starts(files)
    assert (start.command, start.workdir, start.source) == ("python -m rag", "src", "python -m")
    assert (start.port, start.port_source) == (8000, "the code's default")
    assert start.evidence == Evidence(
        "src/rag/__main__.py", 4, 'uvicorn.run("rag.api:app", port=int(os.environ.get("PORT", 8000)), host="0.0.0.0")'
    )


def test_main_block_inside_a_package_runs_as_a_module_from_the_top_package_parent() -> None:
    files = {
        "backend/app/__init__.py": "",
        "backend/app/api/__init__.py": "",
        "backend/app/api/server.py": "from flask import Flask\nfrom .routes import bp\napp = Flask(__name__)\n\nif __name__ == '__main__':\n    app.run(host='0.0.0.0', port=5050)\n",
    }
    [start] = module_main_starts(files)
    assert (start.command, start.workdir, start.source) == ("python -m app.api.server", "backend", "__main__ block")
    assert (start.port, start.port_source, start.evidence.line) == (5050, "the code", 6)


def test_main_block_script_outside_a_package_runs_from_its_directory() -> None:
    files = {
        "services/chat/chat_server.py": 'import uvicorn\nfrom fastapi import FastAPI\nPORT = 8090\napp = FastAPI()\n\ndef main():\n    uvicorn.run(app, port=PORT)\n\nif __name__ == "__main__":\n    main()\n'
    }
    [start] = module_main_starts(files)
    assert (start.command, start.workdir, start.port, start.evidence.line) == (
        "python chat_server.py",
        "services/chat",
        8090,
        7,
    )


def test_main_blocks_that_do_not_serve_and_tests_are_ignored() -> None:
    files = {
        "scripts/ingest.py": "import argparse\nif __name__ == '__main__':\n    argparse.ArgumentParser().parse_args()\n",
        "cli.py": "import asyncio\nif __name__ == '__main__':\n    asyncio.run(main())\n",
        "tests/test_server.py": "import uvicorn\nif __name__ == '__main__':\n    uvicorn.run('x:app')\n",
        "broken.py": "if __name__ == '__main__':\n    uvicorn.run(\n",
    }
    assert module_main_starts(files) == []


def test_socketio_and_aiohttp_defaults() -> None:
    files = {
        "a.py": "from flask_socketio import SocketIO\nif __name__ == '__main__':\n    socketio.run(app)\n",
        "b.py": "from aiohttp import web\nif __name__ == '__main__':\n    web.run_app(make_app())\n",
    }
    assert [(s.command, s.port) for s in module_main_starts(files)] == [("python a.py", 5000), ("python b.py", 8080)]


# --- app objects ---------------------------------------------------------------------------------------------------


def test_fastapi_app_in_backend_runs_from_the_directory_its_imports_need() -> None:
    files = {
        "backend/app/main.py": "from fastapi import FastAPI\nfrom app.routes import router\n\napp = FastAPI(title='RAG')\napp.include_router(router)\n",
        "backend/app/routes.py": "from fastapi import APIRouter\nrouter = APIRouter()\n",
    }
    [start] = app_object_starts(files)
    assert start.command == "uvicorn app.main:app --host 127.0.0.1 --port 8000"
    assert (start.workdir, start.source, start.tier) == ("backend", "app object", "inferred")
    assert (start.port, start.port_source) == (8000, "the framework's default")
    assert start.evidence == Evidence("backend/app/main.py", 4, "app = FastAPI(title='RAG')")


@pytest.mark.parametrize(
    ("path", "source", "command", "workdir"),
    [
        (
            "src/rag/api.py",
            "import fastapi\napi = fastapi.FastAPI()\n",
            "uvicorn rag.api:api --host 127.0.0.1 --port 8000",
            "src",
        ),
        (
            "app/main.py",
            "from litestar import Litestar\napp = Litestar([])\n",
            "uvicorn app.main:app --host 127.0.0.1 --port 8000",
            "",
        ),
        (
            "server.py",
            "from starlette.applications import Starlette\nasgi: Starlette = Starlette()\n",
            "uvicorn server:asgi --host 127.0.0.1 --port 8000",
            "",
        ),
        (
            "web/app.py",
            "from flask import Flask\napp = Flask(__name__)\n",
            "flask --app web.app:app run --host 127.0.0.1 --port 8000",
            "",
        ),
        (
            "svc/app.py",
            "from quart import Quart\napp = Quart(__name__)\n",
            "quart --app svc.app:app run --host 127.0.0.1 --port 8000",
            "",
        ),
        (
            "rag/__init__.py",
            "from flask import Flask\n\ndef create_app():\n    app = Flask(__name__)\n    return app\n",
            "flask --app rag:create_app run --host 127.0.0.1 --port 8000",
            "",
        ),
        (
            "api.py",
            "from fastapi import FastAPI\n\ndef build() -> FastAPI:\n    return FastAPI()\n",
            "uvicorn api:build --factory --host 127.0.0.1 --port 8000",
            "",
        ),
        (
            "my-service/main.py",
            "from fastapi import FastAPI\napp = FastAPI()\n",
            "uvicorn main:app --host 127.0.0.1 --port 8000",
            "my-service",
        ),
    ],
)
def test_app_objects_and_factories(path: str, source: str, command: str, workdir: str) -> None:
    [start] = app_object_starts({path: source})
    assert (start.command, start.workdir) == (command, workdir)


def test_app_objects_ranked_entry_point_names_first_examples_last_tests_skipped() -> None:
    app = "from fastapi import FastAPI\napp = FastAPI()\n"
    files = {
        "examples/main.py": app,
        "pkg/sub/routes_app.py": app,
        "pkg/deep/server.py": app,
        "tests/test_api.py": app,
        "test_main.py": app,
        "conftest.py": app,
        "main.py": "x = FastAPI(",
        "helpers.py": app,
    }
    assert [start.evidence.path for start in app_object_starts(files)] == [
        "pkg/deep/server.py",
        "helpers.py",
        "pkg/sub/routes_app.py",
        "examples/main.py",
    ]


def test_django_manage_py() -> None:
    manage = "import os, sys\n\ndef main():\n    os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'site.settings')\n"
    [start] = app_object_starts({"web/manage.py": manage, "other/manage.py": "print('no settings')\n"})
    assert start.command == "python manage.py runserver 127.0.0.1:8000 --noreload"
    assert (start.workdir, start.evidence.line, start.port) == ("web", 4, 8000)


@pytest.mark.parametrize(
    "source",
    ["\x00\x01 binary", "def (:", "x = " + "(" * 10_000 + ")" * 10_000, "app = FastAPI(\n" * 5, "\ufeff\u202e"],
)
def test_hostile_python_never_raises(source: str) -> None:
    files = {"main.py": source, "pkg/__main__.py": source, "app.py": source}
    assert app_object_starts(files) == []
    assert module_main_starts(files) == []
    assert pyproject_starts("pyproject.toml", '[project.scripts]\nserve = "main:run"\n', files)[0].port is None
