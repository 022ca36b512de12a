"""Hard-coded provider hosts reach the gateway, and nothing else: the real openai and anthropic SDKs, requests and
raw sockets against a real gateway behind the provider proxy, which is reached the way a sandbox reaches it —
through the in-container LISTENER program, here on host loopback ports."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import anthropic
import httpx2 as httpx  # the installed openai and anthropic SDKs are built on httpx2
import openai
import pytest
import requests

from sandboxes.errors import SandboxError
from sandboxes.gateway.app import Gateway, GatewayConfig
from sandboxes.gateway.proxy import PROXY_SOCKET, TLS_SOCKET, ProviderProxy, ProxyLimits, serve_proxy
from sandboxes.gateway.serve import SOCKET_NAME, serve_gateway
from sandboxes.gateway.tls import GradingCA
from sandboxes.gateway.trust import BUNDLE_INSIDE, SYSTEM_STORE_INSIDE, sandbox_trust
from sandboxes.service import BRIDGE

QUESTION = (
    "Context:\n[deploys-0] A deploy takes about eight minutes end to end.\n\nQuestion: How long does a deploy take?"
)


@dataclass
class Stack:
    gateway: Gateway
    proxy: ProviderProxy
    ca: GradingCA
    proxy_port: int
    tls_port: int

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}"

    def trusting(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca.bundle_path))


@contextmanager
def listener(*sockets: Path) -> Iterator[list[int]]:
    """The in-container bridge's `forward`s as the sandbox runs them (`python3 -c BRIDGE forward 0 A + forward 0
    B`), here on host loopback: one free port per socket, in the order given."""
    args = [word for sock in sockets for word in ("+", "forward", "0", str(sock))][1:]
    process = subprocess.Popen([sys.executable, "-c", BRIDGE, *args], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        bound = {}
        for _ in sockets:  # "forwarding PORT to SOCK", in whichever order they bound
            _, port, _, sock = process.stdout.readline().split()
            bound[sock] = int(port)
        ports = [bound[str(sock)] for sock in sockets]
        yield ports
    finally:
        process.terminate()
        process.wait(timeout=5)


@contextmanager
def running(tmp_path: Path, limits: ProxyLimits | None = None) -> Iterator[Stack]:
    socket_dir = tmp_path / "sock"
    ca = GradingCA.create(tmp_path / "ca")
    with (
        serve_gateway(socket_dir, GatewayConfig(time_scale=0)) as gateway,
        serve_proxy(socket_dir, socket_dir / SOCKET_NAME, ca, limits) as proxy,
        listener(socket_dir / PROXY_SOCKET, socket_dir / TLS_SOCKET) as (proxy_port, tls_port),
    ):
        yield Stack(gateway, proxy, ca, proxy_port, tls_port)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with running(tmp_path) as started:
        yield started


def eventually(condition: Callable[[], bool], within_s: float = 3.0) -> bool:
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def raw_exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send `data` to the proxy port and read until the proxy closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(data)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    return received


def direct_tls(stack: Stack, hostname: str | None, request: bytes, context: ssl.SSLContext | None = None) -> bytes:
    """What a client that ignores proxy variables does: TLS to port 443 of a name /etc/hosts maps to 127.0.0.1."""
    context = context or stack.trusting()
    with (
        socket.create_connection(("127.0.0.1", stack.tls_port), timeout=5) as plain,
        context.wrap_socket(plain, server_hostname=hostname) as tls,
    ):
        tls.sendall(request)
        received = b""
        while chunk := tls.recv(65536):
            received += chunk
    return received


# --- served: the real clients, default base URLs ---------------------------------------------------------------


def test_openai_sdk_with_its_default_base_url_reaches_the_gateway(stack: Stack) -> None:
    http_client = httpx.Client(proxy=stack.proxy_url, verify=stack.trusting(), trust_env=False)
    client = openai.OpenAI(api_key="sk-candidate", max_retries=0, http_client=http_client)
    assert str(client.base_url) == "https://api.openai.com/v1/"
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": QUESTION}])
    streamed = client.chat.completions.create(
        model="gpt-4o-mini", stream=True, messages=[{"role": "user", "content": QUESTION}]
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in streamed if chunk.choices)
    assert "eight minutes" in (reply.choices[0].message.content or "")
    assert "eight minutes" in text
    assert [call.messages for call in stack.gateway.calls] == [[QUESTION], [QUESTION]]
    assert {(a.host, a.port, a.method, a.via) for a in stack.proxy.served} == {
        ("api.openai.com", 443, "CONNECT", "proxy")
    }
    assert stack.proxy.refused == []


def test_requests_post_to_the_hard_coded_url_is_answered_by_the_gateway(stack: Stack) -> None:
    proxies = {"https": stack.proxy_url, "http": stack.proxy_url}
    response = requests.post(
        "https://api.openai.com/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": QUESTION}]},
        headers={"Authorization": "Bearer sk-candidate"},
        proxies=proxies,
        verify=str(stack.ca.bundle_path),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert "eight minutes" in response.json()["choices"][0]["message"]["content"]
    assert stack.gateway.calls[0].messages == [QUESTION]


def test_anthropic_sdk_with_its_default_base_url_reaches_the_gateway(stack: Stack) -> None:
    http_client = httpx.Client(proxy=stack.proxy_url, verify=stack.trusting(), trust_env=False)
    client = anthropic.Anthropic(api_key="sk-ant-candidate", max_retries=0, http_client=http_client)
    assert str(client.base_url) == "https://api.anthropic.com"
    reply = client.messages.create(
        model="claude-3-5-haiku-latest", max_tokens=64, messages=[{"role": "user", "content": QUESTION}]
    )
    assert "eight minutes" in reply.content[0].text
    assert [call.protocol for call in stack.gateway.calls] == ["anthropic"]
    assert [a.host for a in stack.proxy.served] == ["api.anthropic.com"]


def test_an_azure_resource_name_is_served_under_its_own_certificate(stack: Stack) -> None:
    http_client = httpx.Client(proxy=stack.proxy_url, verify=stack.trusting(), trust_env=False)
    client = openai.AzureOpenAI(
        azure_endpoint="https://contoso-rag.openai.azure.com",
        api_key="azure-key",
        api_version="2024-10-21",
        max_retries=0,
        http_client=http_client,
    )
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": QUESTION}])
    assert "eight minutes" in (reply.choices[0].message.content or "")
    assert "contoso-rag.openai.azure.com" in stack.ca.issued


def test_plain_http_in_absolute_form_is_forwarded_in_origin_form(stack: Stack) -> None:
    response = requests.get("http://api.openai.com/v1/models", proxies={"http": stack.proxy_url}, timeout=10)
    assert response.status_code == 200
    assert response.json()["object"] == "list"
    assert [(a.host, a.port, a.method) for a in stack.proxy.served] == [("api.openai.com", 80, "GET")]


def test_direct_tls_picks_the_leaf_by_sni_and_reaches_the_gateway(stack: Stack) -> None:
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": QUESTION}]}).encode()
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    answer = direct_tls(stack, "api.openai.com", request)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert b"eight minutes" in answer
    assert [(a.host, a.method, a.via) for a in stack.proxy.served] == [("api.openai.com", "TLS", "tls")]


# --- refused and recorded ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "host", "port", "method"),
    [
        (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", "example.com", 443, "CONNECT"),
        (b"CONNECT api.openai.com:22 HTTP/1.1\r\nHost: api.openai.com:22\r\n\r\n", "api.openai.com", 22, "CONNECT"),
        (b"CONNECT 93.184.216.34:443 HTTP/1.1\r\n\r\n", "93.184.216.34", 443, "CONNECT"),
        (b"CONNECT [2606:2800:220:1::1]:443 HTTP/1.1\r\n\r\n", "2606:2800:220:1::1", 443, "CONNECT"),
        (b"CONNECT api.openai.com.evil.test:443 HTTP/1.1\r\n\r\n", "api.openai.com.evil.test", 443, "CONNECT"),
        (
            b"POST http://example.com/v1/chat/completions HTTP/1.1\r\nHost: example.com\r\n\r\n",
            "example.com",
            80,
            "POST",
        ),
        (b"GET http://api.openai.com:8080/v1/models HTTP/1.1\r\n\r\n", "api.openai.com", 8080, "GET"),
        (b"GET /v1/models HTTP/1.1\r\nHost: api.openai.com\r\n\r\n", "", 0, "GET"),
        (b"CONNECT api.openai.com HTTP/1.1\r\n\r\n", "api.openai.com", 0, "CONNECT"),
        (b"HELLO\r\n\r\n", "", 0, "?"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "", 0, "?"),  # a ClientHello: https:// proxy URL
        (b"GET http://api.openai.com/ HTTP/1.1\r\nHost api.openai.com\r\n\r\n", "", 0, "GET"),
        ("GET http://api.openai.com/caf\u00e9 HTTP/1.1\r\n\r\n".encode(), "", 0, "?"),
    ],
)
def test_everything_else_is_refused_with_403_and_recorded(
    stack: Stack, request_bytes: bytes, host: str, port: int, method: str
) -> None:
    before = time.time()
    answer = raw_exchange(stack.proxy_port, request_bytes)
    assert answer.startswith(b"HTTP/1.1 403 Forbidden"), answer
    assert b"Connection: close" in answer
    [attempt] = stack.proxy.refused
    assert (attempt.host, attempt.port, attempt.method, attempt.via) == (host, port, method, "proxy")
    assert attempt.reason and attempt.reason.encode() in answer
    assert before <= attempt.at <= time.time()
    assert stack.ca.issued == [] and stack.gateway.calls == []


def test_a_client_sees_the_refusal_of_an_unserved_host(stack: Stack) -> None:
    with pytest.raises(requests.exceptions.ProxyError, match="403"):
        requests.get("https://example.com/", proxies={"https": stack.proxy_url}, timeout=10)
    client = openai.OpenAI(
        base_url="https://api.mistral.ai/v1",
        api_key="k",
        max_retries=0,
        http_client=httpx.Client(proxy=stack.proxy_url, verify=stack.trusting(), trust_env=False),
    )
    with pytest.raises(openai.APIConnectionError):
        client.models.list()
    assert [(a.host, a.method) for a in stack.proxy.refused] == [
        ("example.com", "CONNECT"),
        ("api.mistral.ai", "CONNECT"),
    ]
    assert stack.ca.issued == []


def test_an_unserved_or_missing_sni_is_refused_and_no_leaf_is_issued(stack: Stack) -> None:
    with pytest.raises((ssl.SSLError, ConnectionError)):
        direct_tls(stack, "example.com", b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")
    blind = ssl.create_default_context(cafile=str(stack.ca.bundle_path))
    blind.check_hostname = False
    with pytest.raises((ssl.SSLError, ConnectionError)):
        direct_tls(stack, None, b"GET / HTTP/1.1\r\n\r\n", blind)
    assert [(a.host, a.port, a.method, a.via) for a in stack.proxy.refused] == [
        ("example.com", 443, "TLS", "tls"),
        ("", 443, "TLS", "tls"),
    ]
    assert stack.proxy.refused[1].reason == "no SNI sent"
    assert stack.ca.issued == [] and stack.gateway.calls == []


# --- trust comes from the grading CA, and its key stays in memory --------------------------------------------------


def test_without_the_grading_ca_the_handshake_fails(stack: Stack) -> None:
    system_roots_only = ssl.create_default_context()
    client = openai.OpenAI(
        api_key="sk-candidate",
        max_retries=0,
        http_client=httpx.Client(proxy=stack.proxy_url, verify=system_roots_only, trust_env=False),
    )
    with pytest.raises(openai.APIConnectionError) as raised:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": QUESTION}])
    assert "CERTIFICATE_VERIFY_FAILED" in repr(raised.value.__cause__)
    with pytest.raises(ssl.SSLCertVerificationError):
        direct_tls(stack, "api.openai.com", b"GET /v1/models HTTP/1.1\r\n\r\n", system_roots_only)
    assert stack.gateway.calls == []
    # The client gives up first; the proxy learns of it a moment later.
    assert eventually(lambda: len(stack.proxy.failed_handshakes) == 2)
    assert [(a.host, a.via) for a in stack.proxy.failed_handshakes] == [
        ("api.openai.com", "proxy"),
        ("api.openai.com", "tls"),
    ]


def test_the_ca_vouches_only_for_provider_hosts(stack: Stack) -> None:
    """Even a leaf the CA were made to sign for another name fails verification: the CA is name-constrained."""
    leaf = stack.ca.leaf_context("intranet.example.org")
    with socket.create_server(("127.0.0.1", 0)) as server:
        serving = threading.Thread(target=_serve_one_handshake, args=(server, leaf), daemon=True)
        serving.start()
        with (
            socket.create_connection(server.getsockname(), timeout=5) as plain,
            pytest.raises(ssl.SSLCertVerificationError, match="permitted subtree violation"),
        ):
            stack.trusting().wrap_socket(plain, server_hostname="intranet.example.org")
        serving.join(timeout=5)


def _serve_one_handshake(server: socket.socket, context: ssl.SSLContext) -> None:
    accepted, _ = server.accept()
    with accepted, contextlib.suppress(ssl.SSLError, OSError):
        context.wrap_socket(accepted, server_side=True).close()


def test_the_ca_key_is_never_written_and_never_in_the_trust_plan(stack: Stack, tmp_path: Path) -> None:
    on_disk = {path: path.read_bytes() for path in (tmp_path / "ca").rglob("*") if path.is_file()}
    assert sorted(path.name for path in on_disk) == ["ca-bundle.pem", "ca.pem"]
    for path, contents in on_disk.items():
        assert b"PRIVATE KEY" not in contents, path
        assert os.stat(path).st_mode & 0o777 == 0o644
    assert stack.ca.cert_pem in on_disk[stack.ca.bundle_path]
    assert on_disk[stack.ca.bundle_path].count(b"BEGIN CERTIFICATE") > 100  # the system roots are still there
    plan = sandbox_trust(stack.ca.bundle_path, "/var/tmp/viva-venv/lib/python3.11/site-packages")
    for source in plan.mounts.values():
        assert b"PRIVATE KEY" not in Path(source).read_bytes()
    assert "PRIVATE KEY" not in json.dumps(plan.env) + json.dumps(plan.forwards)


# --- bounded everywhere ------------------------------------------------------------------------------------------


def test_a_slow_or_oversized_request_head_is_cut_off(tmp_path: Path) -> None:
    limits = ProxyLimits(head_timeout_s=0.3, max_head_bytes=2048)
    with running(tmp_path, limits) as stack:
        started = time.monotonic()
        slow = raw_exchange(stack.proxy_port, b"CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.op")
        waited = time.monotonic() - started
        huge = raw_exchange(stack.proxy_port, b"CONNECT api.openai.com:443 HTTP/1.1\r\nX-Pad: " + b"a" * 10_000)
        reasons = [attempt.reason for attempt in stack.proxy.refused]
    assert slow.startswith(b"HTTP/1.1 403") and waited < 3
    assert huge.startswith(b"HTTP/1.1 403")
    assert reasons == ["no complete request head within 0.3 s", "request head larger than 2048 bytes"]


def test_connections_past_the_cap_are_turned_away_and_silent_tunnels_dropped(tmp_path: Path) -> None:
    with running(tmp_path, ProxyLimits(max_connections=2, handshake_timeout_s=0.5)) as stack:
        silent = []
        for _ in range(2):  # CONNECT answered, then never a ClientHello
            tunnel = socket.create_connection(("127.0.0.1", stack.proxy_port), timeout=5)
            tunnel.sendall(b"CONNECT api.openai.com:443 HTTP/1.1\r\n\r\n")
            assert tunnel.recv(100).startswith(b"HTTP/1.1 200")
            silent.append(tunnel)
        turned_away = raw_exchange(stack.proxy_port, b"CONNECT api.openai.com:443 HTTP/1.1\r\n\r\n")
        for tunnel in silent:
            assert _read_until_closed(tunnel) == b""  # the handshake timed out
            tunnel.close()
        time.sleep(0.1)
        response = requests.get("http://api.openai.com/v1/models", proxies={"http": stack.proxy_url}, timeout=10)
        failed = stack.proxy.failed_handshakes
    assert turned_away.startswith(b"HTTP/1.1 503")
    assert stack.proxy.refused[0].reason == "more than 2 connections open"
    assert [(attempt.host, attempt.via) for attempt in failed] == [("api.openai.com", "proxy")] * 2
    assert response.status_code == 200


def test_an_established_tunnel_that_goes_quiet_is_closed(tmp_path: Path) -> None:
    with running(tmp_path, ProxyLimits(idle_timeout_s=0.5)) as stack:
        plain = socket.create_connection(("127.0.0.1", stack.proxy_port), timeout=5)
        plain.sendall(b"CONNECT api.openai.com:443 HTTP/1.1\r\n\r\n")
        assert plain.recv(100).startswith(b"HTTP/1.1 200")
        with stack.trusting().wrap_socket(plain, server_hostname="api.openai.com") as tls:
            tls.sendall(b"GET /v1/models HTTP/1.1\r\nHost: api.openai.com\r\n\r\n")
            assert tls.recv(65536).startswith(b"HTTP/1.1 200")
            started = time.monotonic()
            tls.settimeout(10)  # a proxy that never closes fails the test with TimeoutError
            assert _read_until_closed(tls) == b""
            quiet_for = time.monotonic() - started
    # uvicorn closes an idle keep-alive connection after 5 s: the proxy's own limit must be what closed it.
    assert 0.4 <= quiet_for < 3


def _read_until_closed(connection: socket.socket) -> bytes:
    try:
        return connection.recv(100)
    except (ssl.SSLError, ConnectionError):
        return b""


def test_the_refusal_record_is_bounded_and_counts_on(tmp_path: Path) -> None:
    with running(tmp_path, ProxyLimits(max_recorded=5)) as stack:
        for number in range(20):
            raw_exchange(stack.proxy_port, f"CONNECT host{number}.example.com:443 HTTP/1.1\r\n\r\n".encode())
        kept = [attempt.host for attempt in stack.proxy.refused]
        assert stack.proxy.refused_count == 20
    assert kept == [f"host{number}.example.com" for number in range(15, 20)]


# --- what the container is given ---------------------------------------------------------------------------------


def test_the_trust_plan_mounts_the_bundle_everywhere_and_points_clients_at_the_proxy(tmp_path: Path) -> None:
    ca = GradingCA.create(tmp_path / "ca")
    site = "/var/tmp/viva-venv/lib/python3.11/site-packages"
    plan = sandbox_trust(ca.bundle_path, site, sidecars=["qdrant", "redis"], hostnames=["contoso.openai.azure.com"])
    bundle = str(ca.bundle_path.resolve())
    assert plan.mounts == {
        BUNDLE_INSIDE: bundle,
        SYSTEM_STORE_INSIDE: bundle,
        f"{site}/certifi/cacert.pem": bundle,
    }
    assert str(ca.cert_path) not in plan.mounts.values()  # the bundle (system roots + CA), not the bare CA
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        assert plan.env[name] == "http://127.0.0.1:18081"
    assert plan.env["NO_PROXY"] == plan.env["no_proxy"] == "localhost,127.0.0.1,::1,0.0.0.0,qdrant,redis"
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"):
        assert plan.env[name] == BUNDLE_INSIDE
    assert plan.extra_hosts == dict.fromkeys(
        ["api.openai.com", "api.anthropic.com", "ollama.com", "contoso.openai.azure.com"], "127.0.0.1"
    )
    assert plan.forwards == [(18081, "/sock/proxy.sock"), (443, "/sock/tls.sock")]
    assert sandbox_trust(ca.bundle_path, None).mounts == {BUNDLE_INSIDE: bundle, SYSTEM_STORE_INSIDE: bundle}
    with pytest.raises(SandboxError, match=r"example\.com"):
        sandbox_trust(ca.bundle_path, None, hostnames=["example.com"])
