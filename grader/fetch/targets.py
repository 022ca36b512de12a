"""Understanding a target string, without any I/O beyond asking whether a local path exists.

Accepted: `https://host/path[.git][@ref]`, `owner/name[@ref]` (GitHub), and with `allow_local` a local
directory or git repository (`./repo[@ref]`, `/abs/repo`) or `file://` URL. Refused: every other
transport (`ext::`, `fd::`, ssh and `user@host:path`, `git://`, plain `http://`), option-like targets.
A string that is both an existing local path and looks like `owner/name` is the local path.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from grader.errors import TargetRefused
from grader.fetch.model import ParsedTarget, SourceKind

_REF = re.compile(r"^(?!-)(?!.*\.\.)[A-Za-z0-9._/+-]{1,200}$")
_SHORTHAND = re.compile(r"^(?P<owner>[A-Za-z0-9][A-Za-z0-9-]{0,38})/(?P<name>[A-Za-z0-9._-]{1,100})$")
_SCP_LIKE = re.compile(r"^[^/\s]+@[^/\s:]+:")
_TRANSPORT = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*::")


def parse_target(target: str, *, allow_local: bool, allowed_hosts: list[str] | None = None) -> ParsedTarget:
    text = target.strip()
    if not text:
        raise TargetRefused("empty target")
    if text.startswith("-"):
        raise TargetRefused("a target may not start with '-' (it would read as a git option)")
    if any(ch in text for ch in "\x00\n\r"):
        raise TargetRefused("a target may not contain control characters")
    if _TRANSPORT.match(text):
        raise TargetRefused("git remote helpers (ext::, fd::, …) are refused; give an https URL")
    if "://" in text:
        return _parse_url(text, allow_local=allow_local, allowed_hosts=allowed_hosts)
    if _SCP_LIKE.match(text):
        raise TargetRefused("ssh targets (user@host:path) are refused; give an https URL")
    local = _parse_local(text) if allow_local else None
    if local is not None:
        return local
    base, ref = _split_ref(text)
    match = _SHORTHAND.match(base)
    if match:
        return _https(
            f"https://github.com/{match['owner']}/{match['name'].removesuffix('.git')}.git",
            ref,
            allowed_hosts,
            display=text,
        )
    if not allow_local:
        raise TargetRefused("only https git URLs and owner/name are accepted here; local paths are for the CLI")
    raise TargetRefused(f"{_safe(text)!r} is neither an existing local path nor owner/name nor an https URL")


def _parse_url(text: str, *, allow_local: bool, allowed_hosts: list[str] | None) -> ParsedTarget:
    scheme = text.split("://", 1)[0].lower()
    if scheme == "https":
        parts = urlsplit(text)
        path, ref = _split_ref(parts.path)
        clean = urlunsplit(("https", parts.hostname or "", path, "", ""))
        if parts.port:
            clean = urlunsplit(("https", f"{parts.hostname}:{parts.port}", path, "", ""))
        display = clean + (f"@{ref}" if ref else "")
        return _https(
            clean,
            ref,
            allowed_hosts,
            display=display,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )
    if scheme == "file":
        if not allow_local:
            raise TargetRefused("file:// targets are for the CLI only")
        path, ref = _split_ref(urlsplit(text).path)
        local = _parse_local(unquote(path) + (f"@{ref}" if ref else ""))
        if local is None:
            raise TargetRefused(f"no such local path: {_safe(path)!r}")
        return local
    if scheme == "http":
        raise TargetRefused("plain http:// is refused: a clone must be encrypted (use https://)")
    raise TargetRefused(f"the {scheme}:// transport is refused; give an https URL")


def _https(
    url: str,
    ref: str | None,
    allowed_hosts: list[str] | None,
    *,
    display: str,
    username: str | None = None,
    password: str | None = None,
) -> ParsedTarget:
    host = (urlsplit(url).hostname or "").lower()
    if not host:
        raise TargetRefused("the URL names no host")
    if allowed_hosts is not None and host not in {allowed.lower() for allowed in allowed_hosts}:
        raise TargetRefused(f"host {host!r} is not on the allow-list ({', '.join(allowed_hosts)})")
    return ParsedTarget(kind="remote", url=url, display=display, ref=ref, username=username, password=password)


def _parse_local(text: str) -> ParsedTarget | None:
    """A local path (with an optional @ref); None when nothing exists there."""
    candidates: list[tuple[str, str | None]] = [(text, None)]
    base, ref = _split_ref(text)
    if ref is not None:
        candidates.append((base, ref))
    for path_text, ref_part in candidates:
        path = Path(path_text).expanduser()
        if path.is_dir():
            resolved = path.resolve()
            is_git = (resolved / ".git").exists()
            if ref_part is not None and not is_git:
                raise TargetRefused(f"{_safe(path_text)!r} is not a git repository, so @{ref_part} means nothing")
            kind: SourceKind = "local_git" if is_git else "local_dir"
            return ParsedTarget(kind=kind, url=str(resolved), display=text, ref=ref_part)
        if path.exists():
            raise TargetRefused(f"{_safe(path_text)!r} is not a directory")
    return None


def _split_ref(text: str) -> tuple[str, str | None]:
    """`base@ref` → (base, ref), splitting at the last '@'; the ref may contain '/' (`feature/x`) and is validated."""
    base, at, ref = text.rpartition("@")
    if not at or not base:
        return text, None
    if not _REF.match(ref):
        raise TargetRefused(f"{_safe(ref)!r} is not a valid branch, tag or commit name")
    return base, ref


def _safe(text: str) -> str:
    """Text for an error message: cut, and with anything that looks like credentials removed."""
    return re.sub(r"//[^/@]*@", "//", text)[:200]
