"""Hard-coded provider hosts from inside a network-less, hardened sandbox: through HTTPS_PROXY, and straight to
port 443 of a name /etc/hosts maps to 127.0.0.1. What is served reaches the gateway; everything else is refused and
recorded; no private key is anywhere the sandbox can read."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from sandboxes.deps import parse_requirements
from sandboxes.docker_backend import DockerSandbox, docker_client
from sandboxes.gateway.app import Gateway, GatewayConfig
from sandboxes.gateway.proxy import ProviderProxy, serve_proxy
from sandboxes.gateway.serve import SOCKET_NAME, serve_gateway
from sandboxes.gateway.tls import GradingCA
from sandboxes.gateway.trust import BUNDLE_INSIDE, SYSTEM_STORE_INSIDE, TrustPlan, sandbox_trust
from sandboxes.images import build_offline_base
from sandboxes.layers import VENV, dependency_layer, image_python
from sandboxes.service import BRIDGE
from sandboxes.settings import SandboxSettings

pytestmark = pytest.mark.docker

QUESTION = (
    "Context:\n[deploys-0] A deploy takes about eight minutes end to end.\n\nQuestion: How long does a deploy take?"
)

FETCH = """
import json, sys, urllib.error, urllib.request
def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            return {"status": response.status, "body": response.read(2000).decode()}
    except urllib.error.HTTPError as error:
        return {"status": error.code, "error": str(error)}
    except (urllib.error.URLError, OSError) as error:
        return {"status": None, "error": str(error)}
print(json.dumps({url: fetch(url) for url in sys.argv[1:]}))
"""

# Everything the host hands a container arrives through a mount that is not the image's own root, or through the
# environment: no private key may be in any of it.
FIND_KEYS = """
import json, os, stat
skip = {"overlay", "proc", "sysfs", "devpts", "mqueue", "cgroup", "cgroup2"}
roots = [line.split()[4] for line in open("/proc/self/mountinfo") if line.split(" - ")[1].split()[0] not in skip]
marker = b"PRIVATE" + b" KEY"  # spelt in two halves: this script is itself in /tmp
seen, keys = 0, []
for root in roots:
    paths = [root] if os.path.isfile(root) else [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]
    for path in paths:
        if not stat.S_ISREG(os.lstat(path).st_mode):  # sockets, devices (/dev/zero never ends), links
            continue
        try:
            with open(path, "rb") as file:
                data = file.read(50_000_000)
        except OSError:
            continue
        seen += 1
        if marker in data:
            keys.append(path)
for pid in ("self", "1"):
    if marker in open(f"/proc/{pid}/environ", "rb").read():
        keys.append(f"/proc/{pid}/environ")
print(json.dumps({"roots": roots, "files": seen, "keys": keys}))
"""

OPENAI_DEFAULT_URL = f"""
import openai
client = openai.OpenAI(api_key="sk-candidate", max_retries=0, timeout=20)
print(client.base_url)
reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{{"role": "user", "content": {QUESTION!r}}}])
print("OPENAI", reply.choices[0].message.content)
"""


def base_image() -> str:
    image = SandboxSettings().offline_image
    try:
        docker_client().images.get(image)
    except Exception:
        build_offline_base(docker_client(), image)
    return image


@contextmanager
def gateway_behind_proxy(tmp_path: Path) -> Iterator[tuple[Gateway, ProviderProxy, GradingCA, Path]]:
    socket_dir = tmp_path / "sock"
    ca = GradingCA.create(tmp_path / "ca")
    with ExitStack() as stack:
        gateway = stack.enter_context(serve_gateway(socket_dir, GatewayConfig(time_scale=0)))
        proxy = stack.enter_context(serve_proxy(socket_dir, socket_dir / SOCKET_NAME, ca))
        yield gateway, proxy, ca, socket_dir


async def start_listener(sandbox: DockerSandbox, plan: TrustPlan) -> None:
    """The plan's forwards as grading starts them: the bridge's `forward`s in one process."""
    args = [word for port, sock in plan.forwards for word in ("+", "forward", str(port), sock)][1:]
    await sandbox.spawn(["sh", "-c", 'exec python3 -c "$@" > /tmp/listener.log 2>&1', "sh", BRIDGE, *args])
    for _ in range(100):
        log = (await sandbox.exec(["cat", "/tmp/listener.log"])).stdout
        if log.count("forwarding") == len(plan.forwards):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the listener did not start: {log!r}")


async def python(sandbox: DockerSandbox, script: str, *args: str, env: dict[str, str] | None = None) -> str:
    await sandbox.write_file("/tmp/script.py", script.encode())
    result = await sandbox.exec(["python3", "/tmp/script.py", *args], env=env, timeout=60)
    return result.stdout + result.stderr


def test_through_https_proxy_in_a_docker_sandbox(tmp_path: Path) -> None:
    """The plan's proxy variables and the bundle at BUNDLE_INSIDE; urllib with its defaults."""
    with gateway_behind_proxy(tmp_path) as (gateway, proxy, ca, socket_dir):
        plan = sandbox_trust(ca.bundle_path, None)

        async def inside() -> tuple[dict[str, Any], dict[str, Any]]:
            sandbox = DockerSandbox(
                base_image(), socket_dir=socket_dir, env=plan.env, file_mounts={BUNDLE_INSIDE: ca.bundle_path}
            )
            async with sandbox:
                await start_listener(sandbox, plan)
                fetched = await python(
                    sandbox, FETCH, "https://api.openai.com/v1/models", "https://example.com/", "http://example.com/"
                )
                keys = await python(sandbox, FIND_KEYS)
            return json.loads(fetched), json.loads(keys)

        fetched, keys = asyncio.run(inside())
        refused = [(a.host, a.port, a.method) for a in proxy.refused]
        served = [(a.host, a.method) for a in proxy.served]
    models = fetched["https://api.openai.com/v1/models"]
    assert models["status"] == 200 and "viva-offline" in models["body"], models
    assert "403" in fetched["https://example.com/"]["error"], fetched
    assert fetched["http://example.com/"]["status"] == 403, fetched
    assert refused == [("example.com", 443, "CONNECT"), ("example.com", 80, "GET")]
    assert served == [("api.openai.com", "CONNECT")]
    assert gateway.calls == []  # /v1/models is answered without a model call
    assert "/sock" in keys["roots"] and BUNDLE_INSIDE in keys["roots"], keys
    assert keys["files"] > 0 and keys["keys"] == [], keys


def test_the_full_trust_plan_serves_clients_that_ignore_proxy_variables(tmp_path: Path) -> None:
    """The real openai SDK (installed in the dependency venv, trusting certifi's file only) with its default base
    URL and no proxy variables: /etc/hosts sends it to 127.0.0.1:443, the listener to tls.sock, the SNI to a leaf."""
    client = docker_client()
    layer = dependency_layer(client, base_image(), parse_requirements("openai==2.8.1\nanthropic==0.72.0\n"), tmp_path)
    assert layer.install_ok, layer.log_tail
    site_packages = f"{VENV}/lib/python{image_python(client, layer.image)}/site-packages"
    openai_python = f"{VENV}/bin/python"
    with gateway_behind_proxy(tmp_path) as (gateway, proxy, ca, socket_dir):
        plan = sandbox_trust(ca.bundle_path, site_packages)
        no_variables: dict[str, str] = {}  # the container has none of the plan's variables: the mounts alone must do
        through_proxy = plan.env

        async def inside() -> dict[str, str]:
            sandbox = DockerSandbox(
                layer.image,
                socket_dir=socket_dir,
                file_mounts={inside: Path(host) for inside, host in plan.mounts.items()},
                extra_hosts={**plan.extra_hosts, "example.com": "127.0.0.1"},  # an unserved name, to see it refused
                sysctls=plan.sysctls,
            )
            async with sandbox:
                await start_listener(sandbox, plan)
                await sandbox.write_file("/tmp/openai_default.py", OPENAI_DEFAULT_URL.encode())
                run = ["/tmp/openai_default.py"]
                direct = await sandbox.exec([openai_python, *run], env=no_variables, timeout=60)
                proxied = await sandbox.exec([openai_python, *run], env=through_proxy, timeout=60)
                system_store = await python(
                    sandbox, FETCH, "https://api.anthropic.com/v1/models", "https://example.com/", env=no_variables
                )
                keys = await python(sandbox, FIND_KEYS)
            return {
                "direct": direct.stdout + direct.stderr,
                "proxied": proxied.stdout + proxied.stderr,
                "system_store": system_store,
                "keys": keys,
            }

        outputs = asyncio.run(inside())
        served = [(a.host, a.method, a.via) for a in proxy.served]
        refused = [(a.host, a.method, a.via) for a in proxy.refused]
    for case in ("direct", "proxied"):
        assert "https://api.openai.com/v1/" in outputs[case], outputs[case]
        assert "OPENAI A deploy takes about eight minutes" in outputs[case], outputs[case]
    fetched = json.loads(outputs["system_store"])
    assert fetched["https://api.anthropic.com/v1/models"]["status"] == 200, fetched
    assert fetched["https://example.com/"]["status"] is None, fetched  # the handshake was refused
    assert [call.messages for call in gateway.calls] == [[QUESTION], [QUESTION]]
    assert served == [
        ("api.openai.com", "TLS", "tls"),
        ("api.openai.com", "CONNECT", "proxy"),
        ("api.anthropic.com", "TLS", "tls"),
    ]
    assert refused == [("example.com", "TLS", "tls")]
    assert "example.com" not in ca.issued
    keys = json.loads(outputs["keys"])
    assert {BUNDLE_INSIDE, SYSTEM_STORE_INSIDE, f"{site_packages}/certifi/cacert.pem"} <= set(keys["roots"]), keys
    assert keys["keys"] == [], keys
