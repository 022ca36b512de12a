"""The provider proxy: how a sandboxed app that hard-codes `https://api.openai.com` still reaches the gateway.

Two Unix sockets beside gateway.sock, each forwarded to a loopback port inside the network-less container:
- `proxy.sock` speaks HTTP proxy (HTTPS_PROXY points at it): `CONNECT host:443` for a served provider host is
  answered 200, TLS is terminated with a leaf from the grading's CA, and the decrypted stream goes to the gateway;
  an absolute-form `POST http://api.openai.com/...` is forwarded in origin form.
- `tls.sock` takes raw TLS (the container maps provider names to 127.0.0.1, where port 443 forwards here): the SNI
  picks the leaf.
Anything else (another host, another port, an IP literal, a malformed request, an unserved SNI) is refused with a
403 or a failed handshake and recorded for the grader. The proxy connects to one place only: the gateway's Unix
socket. It opens no connection to any remote host, whatever a request names.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import msgspec

from sandboxes.errors import SandboxError
from sandboxes.gateway.clients import SERVED_PROVIDER_HOSTS
from sandboxes.gateway.serve import check_socket_path
from sandboxes.gateway.tls import GradingCA, is_hostname

PROXY_SOCKET = "proxy.sock"
TLS_SOCKET = "tls.sock"
TLS_PORT = 443
HTTP_PORT = 80
_CHUNK = 65536
_TLS_HANDSHAKE = b"\x16"
"""The first byte of a TLS ClientHello record."""
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "upgrade"})

Via = Literal["proxy", "tls"]


class ProxyLimits(msgspec.Struct, frozen=True, kw_only=True):
    """What one client can cost the host: a hostile one is cut off, never waited for without end."""

    max_connections: int = 64
    """Open at once over both sockets; one more is answered 503 (proxy) or closed (TLS) and recorded."""
    max_head_bytes: int = 16 * 1024
    """The proxy request line and headers."""
    max_headers: int = 100
    head_timeout_s: float = 10.0
    handshake_timeout_s: float = 10.0
    idle_timeout_s: float = 300.0
    """A connection with no bytes either way this long is closed. Longer than any silence the gateway plays
    (a `timeout` fault waits 120 s at full scale): the proxy must not cut a played fault short."""
    max_recorded: int = 256
    """Entries kept in each of `refused`, `served` and `failed_handshakes`; the counts go on past it."""


class ProxyAttempt(msgspec.Struct, frozen=True):
    """One connection's request as the proxy saw it."""

    host: str
    port: int
    method: str
    """The HTTP method (`CONNECT`, `POST`, ...), `TLS` for a direct TLS connection, `?` when none could be read."""
    via: Via
    reason: str
    at: float
    """time.time() when it was decided."""


class _Ledger:
    """A bounded, thread-safe record: the proxy's thread writes it, the grader's reads it."""

    def __init__(self, limit: int) -> None:
        self._items: deque[ProxyAttempt] = deque(maxlen=limit)
        self._lock = threading.Lock()
        self.count = 0

    def add(self, attempt: ProxyAttempt) -> None:
        with self._lock:
            self._items.append(attempt)
            self.count += 1

    def items(self) -> list[ProxyAttempt]:
        with self._lock:
            return list(self._items)


class _Refusal(Exception):
    """A request the proxy will not serve; the reason goes to the client (403) and the record."""

    def __init__(self, reason: str, method: str = "?", host: str = "", port: int = 0) -> None:
        super().__init__(reason)
        self.reason, self.method, self.host, self.port = reason, method, host, port


class _SniChoice:
    """What the SNI callback saw on one direct TLS connection."""

    def __init__(self) -> None:
        self.host = ""
        self.refused = False


class _Head(msgspec.Struct):
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]


def is_served_host(host: str) -> bool:
    """Whether the gateway answers for `host`: a DNS name in SERVED_PROVIDER_HOSTS, where `*.` stands for any
    subdomain (an Azure resource name). IP literals and names DNS does not allow never are."""
    name = host.rstrip(".").lower()
    if not is_hostname(name):
        return False
    return any(
        name.endswith(pattern[1:]) if pattern.startswith("*.") else name == pattern for pattern in SERVED_PROVIDER_HOSTS
    )


class ProviderProxy:
    """Serves `proxy.sock` and `tls.sock` in `socket_dir`, relaying what it accepts to the gateway at `upstream`.
    Runs its own event loop in a thread; `start` and `close` are called from any other thread."""

    def __init__(self, socket_dir: Path, upstream: Path, ca: GradingCA, limits: ProxyLimits | None = None) -> None:
        self.proxy_socket = socket_dir / PROXY_SOCKET
        self.tls_socket = socket_dir / TLS_SOCKET
        for path in (self.proxy_socket, self.tls_socket):
            check_socket_path(path)
        self.socket_dir = socket_dir
        self.upstream = upstream
        self.ca = ca
        self.limits = limits or ProxyLimits()
        self._refused = _Ledger(self.limits.max_recorded)
        self._served = _Ledger(self.limits.max_recorded)
        self._failed = _Ledger(self.limits.max_recorded)
        self._open = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="viva-provider-proxy", daemon=True)
        self._servers: list[asyncio.Server] = []
        self._failure: BaseException | None = None

    # --- what the grader reads ---------------------------------------------------------------------------------

    @property
    def refused(self) -> list[ProxyAttempt]:
        """The latest refused attempts (at most `limits.max_recorded`), oldest first."""
        return self._refused.items()

    @property
    def refused_count(self) -> int:
        """Every refusal, including those no longer kept in `refused`."""
        return self._refused.count

    @property
    def served(self) -> list[ProxyAttempt]:
        """Connections relayed to the gateway: which provider host the app named, and how it got here."""
        return self._served.items()

    @property
    def failed_handshakes(self) -> list[ProxyAttempt]:
        """Served hosts whose TLS handshake failed: usually a client that does not trust the grading's CA (its own
        trust store, a pinned certificate). Viva's limitation to report, not the candidate's failure."""
        return self._failed.items()

    # --- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10) or self._failure is not None:
            raise SandboxError(f"the provider proxy did not start: {self._failure or 'no answer within 10 s'}")

    def close(self) -> None:
        """Stop listening, cancel the connections still open, and stop the loop."""
        if self._loop.is_closed():
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._listen())
        except Exception as error:  # reported by start(), which is waiting for this thread
            for server in self._servers:
                server.close()
            self._loop.close()
            self._failure = error
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()

    async def _listen(self) -> None:
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        for path, handler in ((self.proxy_socket, self._on_proxy), (self.tls_socket, self._on_tls)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            server = await asyncio.start_unix_server(handler, str(path), limit=self.limits.max_head_bytes)
            self._servers.append(server)
            os.chmod(path, 0o666)  # noqa: S103 - the sandbox user (uid 1000) connects through it

    async def _shutdown(self) -> None:
        for server in self._servers:
            server.close()
        current = asyncio.current_task()
        pending = [task for task in asyncio.all_tasks() if task is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    # --- the proxy socket --------------------------------------------------------------------------------------

    async def _on_proxy(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._admit("proxy"):
            await _answer(writer, 503, "too many connections to the provider proxy")
            writer.close()
            return
        try:
            await self._serve_proxy_request(reader, writer)
        except _Refusal as refusal:
            self._record_refusal("proxy", refusal)
            await _answer(writer, 403, refusal.reason)
        except (OSError, ssl.SSLError, TimeoutError):
            pass  # the client went away mid-request: nothing to answer
        finally:
            self._open -= 1
            writer.close()

    async def _serve_proxy_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await self._read_head(reader)
        if head is None:
            return
        if head.method == "CONNECT":
            host, port = _authority(head.target, head.method)
            self._check_served(head.method, host, port, TLS_PORT)
            upstream = await self._open_upstream(writer)
            if upstream is None:
                return
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            failure = await self._start_tls(writer, self.ca.leaf_context(host))
            if failure is not None:
                self._failed.add(ProxyAttempt(host, port, head.method, "proxy", failure, time.time()))
                upstream[1].close()
                return
            self._served.add(ProxyAttempt(host, port, head.method, "proxy", "tls terminated", time.time()))
            await self._splice(reader, writer, *upstream)
            return
        if not head.target.lower().startswith("http://"):
            raise _Refusal(
                "not a proxy request: the target must be absolute (http://host/path) or CONNECT", head.method
            )
        host, port, origin = _absolute_target(head.target, head.method)
        self._check_served(head.method, host, port, HTTP_PORT)
        upstream = await self._open_upstream(writer)
        if upstream is None:
            return
        self._served.add(ProxyAttempt(host, port, head.method, "proxy", "forwarded in origin form", time.time()))
        upstream[1].write(_origin_form(head, origin, host))
        await self._splice(reader, writer, *upstream)

    async def _read_head(self, reader: asyncio.StreamReader) -> _Head | None:
        """The request head, or None when the client closed before sending anything (no attempt to record)."""
        try:
            async with asyncio.timeout(self.limits.head_timeout_s):
                first = await reader.read(1)
                if not first:
                    return None
                if first == _TLS_HANDSHAKE:
                    raise _Refusal("TLS sent to the proxy port: use http://, not https://, as the proxy URL")
                raw = first + await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            raise _Refusal("the connection closed in the middle of the request head") from None
        except asyncio.LimitOverrunError:
            raise _Refusal(f"request head larger than {self.limits.max_head_bytes} bytes") from None
        except TimeoutError:
            raise _Refusal(f"no complete request head within {self.limits.head_timeout_s:g} s") from None
        return _parse_head(raw, self.limits.max_headers)

    def _check_served(self, method: str, host: str, port: int, wanted_port: int) -> None:
        if not is_served_host(host):
            raise _Refusal(f"{host} is not an LLM provider host served here", method, host, port)
        if port != wanted_port:
            raise _Refusal(f"port {port} is not served ({method} to {host} goes to {wanted_port})", method, host, port)

    # --- the TLS socket ----------------------------------------------------------------------------------------

    async def _on_tls(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._admit("tls"):
            writer.close()
            return
        try:
            sni = _SniChoice()
            failure = await self._start_tls(writer, self._sni_context(sni))
            if failure is not None:
                if not sni.refused:  # a refused name is recorded as a refusal already
                    self._failed.add(ProxyAttempt(sni.host, TLS_PORT, "TLS", "tls", failure, time.time()))
                return
            upstream = await self._open_upstream(None)
            if upstream is None:
                return
            self._served.add(ProxyAttempt(sni.host, TLS_PORT, "TLS", "tls", "tls terminated", time.time()))
            await self._splice(reader, writer, *upstream)
        except (OSError, ssl.SSLError, TimeoutError):
            pass
        finally:
            self._open -= 1
            writer.close()

    def _sni_context(self, sni: _SniChoice) -> ssl.SSLContext:
        """A context with no certificate of its own: its SNI callback swaps in the leaf for a served name, or ends
        the handshake (and records the name) before any certificate is issued for it. One per connection (a
        fraction of a millisecond), so a failed handshake can still say which name it was for."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(["http/1.1"])

        def choose_leaf(ssl_object: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext) -> int | None:
            sni.host = (server_name or "").rstrip(".").lower()
            if not sni.host or not is_served_host(sni.host):
                sni.refused = True
                reason = f"{sni.host} is not an LLM provider host served here" if sni.host else "no SNI sent"
                self._record_refusal("tls", _Refusal(reason, "TLS", sni.host, TLS_PORT))
                return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
            ssl_object.context = self.ca.leaf_context(sni.host)
            return None

        context.sni_callback = choose_leaf
        return context

    # --- shared ------------------------------------------------------------------------------------------------

    def _admit(self, via: Via) -> bool:
        if self._open >= self.limits.max_connections:
            reason = f"more than {self.limits.max_connections} connections open"
            self._record_refusal(via, _Refusal(reason))
            return False
        self._open += 1
        return True

    def _record_refusal(self, via: Via, refusal: _Refusal) -> None:
        self._refused.add(ProxyAttempt(refusal.host, refusal.port, refusal.method, via, refusal.reason, time.time()))

    async def _start_tls(self, writer: asyncio.StreamWriter, context: ssl.SSLContext) -> str | None:
        """Terminate TLS on the client's connection: None when the handshake succeeded, else why it did not."""
        try:
            await writer.start_tls(context, ssl_handshake_timeout=self.limits.handshake_timeout_s)
        except (OSError, ssl.SSLError, TimeoutError) as error:
            return f"TLS handshake failed: {type(error).__name__} {error}".strip()[:200]
        return None

    async def _open_upstream(
        self, writer: asyncio.StreamWriter | None
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """A connection to the gateway's socket, the only place the proxy ever connects to; None (after a 502 to a
        proxy client) when the gateway is down — Viva's outage, not a refusal of the candidate's request."""
        try:
            return await asyncio.open_unix_connection(str(self.upstream))
        except OSError:
            if writer is not None:
                await _answer(writer, 502, "the gateway is not answering")
            return None

    async def _splice(
        self,
        client_reader: asyncio.StreamReader,
        client_writer: asyncio.StreamWriter,
        upstream_reader: asyncio.StreamReader,
        upstream_writer: asyncio.StreamWriter,
    ) -> None:
        """Pipe both ways until both ends are done or nothing has moved either way for `idle_timeout_s`."""
        loop = asyncio.get_running_loop()
        last_activity = [loop.time()]

        async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            idle = self.limits.idle_timeout_s
            try:
                while True:
                    try:
                        data = await asyncio.wait_for(reader.read(_CHUNK), idle)
                    except TimeoutError:
                        if loop.time() - last_activity[0] >= idle:
                            return
                        continue
                    if not data:
                        return
                    last_activity[0] = loop.time()
                    writer.write(data)
                    await asyncio.wait_for(writer.drain(), idle)  # a peer that stops reading stops the pipe
            except (OSError, ssl.SSLError, TimeoutError):
                return
            finally:
                if writer.can_write_eof():
                    with contextlib.suppress(OSError):
                        writer.write_eof()
                else:
                    writer.close()

        try:
            await asyncio.gather(pump(client_reader, upstream_writer), pump(upstream_reader, client_writer))
        finally:
            upstream_writer.close()
            client_writer.close()


def _parse_head(raw: bytes, max_headers: int) -> _Head:
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise _Refusal("the request head is not ASCII (TLS sent to the proxy port?)") from None
    request_line, *lines = text[:-4].split("\r\n")
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[1] or parts[2] not in {"HTTP/1.0", "HTTP/1.1"}:
        raise _Refusal(f"malformed request line {request_line[:80]!r}")
    method, target, version = parts
    if len(lines) > max_headers:
        raise _Refusal(f"more than {max_headers} headers", method)
    headers = []
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip() or " " in name:
            raise _Refusal(f"malformed header line {line[:80]!r}", method)
        headers.append((name, value.strip()))
    return _Head(method.upper(), target, version, headers)


def _authority(target: str, method: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` → (host, port); the port is required (CONNECT names it always)."""
    host, colon, port = target.rpartition(":")
    if not colon or not port.isdigit() or not host or not 0 < int(port) < 65536:
        raise _Refusal(f"malformed CONNECT target {target[:80]!r} (want host:port)", method, target[:255])
    return host.removeprefix("[").removesuffix("]").lower(), int(port)


def _absolute_target(target: str, method: str) -> tuple[str, int, str]:
    """`http://host[:port]/path?query` → (host, port, `/path?query`)."""
    try:
        parts = urlsplit(target)
        port = parts.port or HTTP_PORT
    except ValueError:
        raise _Refusal(f"malformed target {target[:80]!r}", method) from None
    host = (parts.hostname or "").lower()
    if not host or parts.username is not None:
        raise _Refusal(f"malformed target {target[:80]!r}", method, host, port)
    origin = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return host, port, origin


def _origin_form(head: _Head, origin: str, host: str) -> bytes:
    """The request as the gateway expects it: origin-form target, Host set to the target's host (a proxy must use
    the absolute URI's, RFC 9112 §3.2.2), no proxy headers, and one request per connection (`Connection: close`),
    so every request on it passes this proxy's check."""
    kept = [(name, value) for name, value in head.headers if name.lower() not in _HOP_BY_HOP | {"host"}]
    lines = [f"{head.method} {origin} {head.version}", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in kept]
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


async def _answer(writer: asyncio.StreamWriter, status: int, reason: str) -> None:
    phrase = {403: "Forbidden", 502: "Bad Gateway", 503: "Service Unavailable"}[status]
    body = f"Viva's sandbox reaches LLM providers only through its gateway: {reason}\n".encode()
    head = f"HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
    writer.write(head.encode() + b"Connection: close\r\n\r\n" + body)
    with contextlib.suppress(OSError, TimeoutError):
        await asyncio.wait_for(writer.drain(), 5)


@contextlib.contextmanager
def serve_proxy(
    socket_dir: Path, upstream: Path, ca: GradingCA, limits: ProxyLimits | None = None
) -> Iterator[ProviderProxy]:
    """Serve the provider proxy on socket_dir/proxy.sock and socket_dir/tls.sock for the duration of the block,
    relaying to the gateway's socket `upstream` (usually socket_dir/gateway.sock)."""
    proxy = ProviderProxy(socket_dir, upstream, ca, limits)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.close()
