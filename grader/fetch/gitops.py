"""Running git safely through GitPython: a clean environment, a shared deadline, no repository-supplied commands.

Every call runs with system and global config ignored, HOME pointed at an empty directory, prompts off,
hooks off, LFS and filters off, only the transports the target needs, and a token (if any) passed in
the environment as an extra HTTP header — never on the command line, never in .git/config.
"""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from grader.errors import FetchError, FetchLimitExceeded

if TYPE_CHECKING:
    import git

SAFE_CONFIG = [
    "core.hooksPath=/dev/null",
    "core.symlinks=false",
    "core.fsmonitor=false",
    "core.askPass=",
    "credential.helper=",
    "submodule.recurse=false",
    "filter.lfs.smudge=",
    "filter.lfs.process=",
    "filter.lfs.required=false",
    "protocol.allow=never",
    "protocol.https.allow=always",
    "advice.detachedHead=false",
    "init.defaultBranch=main",
]


class GitRunner:
    """Runs git commands in one directory against one deadline."""

    def __init__(
        self, work_dir: Path, home: Path, timeout_seconds: float, *, allow_file: bool, auth_header: str | None = None
    ) -> None:
        self.work_dir = work_dir
        self.deadline = time.monotonic() + timeout_seconds
        self.timeout_seconds = timeout_seconds
        self.config = [*SAFE_CONFIG, *(["protocol.file.allow=always"] if allow_file else [])]
        home.mkdir(parents=True, exist_ok=True)
        self.env = {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "",
            "SSH_ASKPASS": "",
            "GIT_LFS_SKIP_SMUDGE": "1",
            "GIT_PROTOCOL_FROM_USER": "0",
            "LC_ALL": "C",
        }
        if auth_header is not None:
            # GIT_CONFIG_COUNT keeps the header out of argv (visible in ps) and out of .git/config.
            self.env |= {
                "GIT_CONFIG_COUNT": "1",
                "GIT_CONFIG_KEY_0": "http.extraHeader",
                "GIT_CONFIG_VALUE_0": auth_header,
            }
        import git  # noqa: PLC0415 - GitPython takes a quarter of a second to import; the settings import this package

        self._git = git.Git(str(work_dir))

    def run(self, *args: str, stdin_file: Path | None = None) -> str:
        import git  # noqa: PLC0415 - as in __init__ (already loaded by then)

        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise self._timeout()
        command = ["git", *(item for pair in self.config for item in ("-c", pair)), *args]
        stdin = open(stdin_file, "rb") if stdin_file is not None else None  # noqa: SIM115 - closed below
        try:
            output = self._git.execute(
                command,
                env=self.env,
                kill_after_timeout=max(0.05, remaining),
                istream=stdin,
                stdout_as_string=True,
                strip_newline_in_stdout=False,
            )
        except git.GitCommandError as error:
            if time.monotonic() >= self.deadline:
                raise self._timeout() from None
            raise FetchError(_describe(error)) from None
        finally:
            if stdin is not None:
                stdin.close()
        return str(output)

    def _timeout(self) -> FetchLimitExceeded:
        return FetchLimitExceeded(f"fetching took longer than {self.timeout_seconds:g} s (VIVA_FETCH_TIMEOUT_SECONDS)")


def basic_auth_header(username: str | None, token: str) -> str:
    pair = f"{username or 'x-access-token'}:{token}".encode()
    return "Authorization: Basic " + base64.b64encode(pair).decode("ascii")


def _describe(error: git.GitCommandError) -> str:
    """The last meaningful line of git's stderr, without anything that looks like credentials."""
    stderr = error.stderr if isinstance(error.stderr, str) else str(error.stderr or "")
    lines = [line.strip().removeprefix("stderr:").strip(" '") for line in stderr.splitlines() if line.strip()]
    message = lines[-1] if lines else f"git exited with status {error.status}"
    for marker in ("Authorization", "Basic "):
        if marker in message:
            message = "git failed (details withheld: they mention credentials)"
    return f"git: {message}"[:300]
