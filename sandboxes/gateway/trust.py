"""What a sandbox needs so that hard-coded provider hosts reach the provider proxy and trust its certificates: data
for whoever starts the container (mounts, environment, /etc/hosts entries, a sysctl) and the in-container program
that carries loopback ports to the proxy's sockets. The grading CA's key is never part of it: only the trust bundle
(certificates) is mounted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgspec

from sandboxes.errors import SandboxError
from sandboxes.gateway.clients import SERVED_PROVIDER_HOSTS
from sandboxes.gateway.proxy import PROXY_SOCKET, TLS_PORT, TLS_SOCKET, is_served_host

if TYPE_CHECKING:
    from pathlib import Path

BUNDLE_INSIDE = "/etc/viva/ca-bundle.pem"
SYSTEM_STORE_INSIDE = "/etc/ssl/certs/ca-certificates.crt"
"""Debian's system store: OpenSSL's default file (/usr/lib/ssl/cert.pem links to it), curl's, git's, Go's."""
PROXY_PORT = 18081
"""Inside the container, beside the gateway forwarder's 18080: HTTPS_PROXY points here."""
SOCKETS_INSIDE = "/sock"
PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy")
CA_BUNDLE_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS")
"""OpenSSL (Python's ssl, httpx, urllib, curl's binary), requests, curl, Node (added to its own roots)."""
LOOPBACK = ("localhost", "127.0.0.1", "::1", "0.0.0.0")  # noqa: S104 - a NO_PROXY entry, nothing listens on it


class TrustPlan(msgspec.Struct, frozen=True, kw_only=True):
    """How to start a container whose hard-coded provider calls reach the gateway. Paths on the host are strings."""

    mounts: dict[str, str]
    """Path inside → host file, each mounted read-only: the trust bundle at BUNDLE_INSIDE, over the image's system
    store, and over certifi's cacert.pem in the dependency venv (certifi reads no environment variable). Keyed by
    the path inside: one host file goes to several places."""
    env: dict[str, str]
    """Proxy variables (upper and lower case: each client reads its own spelling) and the CA-bundle variables."""
    extra_hosts: dict[str, str]
    """Provider hostname → 127.0.0.1, for clients that ignore the proxy variables: port 443 there is the listener."""
    sysctls: dict[str, str]
    """Lets uid 1000 bind port 443. Docker 20.10 already sets it for every non-host network; stated so an engine
    that does not still works."""
    forwards: list[tuple[int, str]]
    """(port, socket inside): each 127.0.0.1 port of the sandbox piped unchanged to a socket of the host's provider
    proxy (TLS stays TLS: the host terminates it) by the bridge's `forward` (sandboxes/programs/bridge.py): the
    proxy port for clients that read the proxy variables, 443 for those that ignore them."""


def sandbox_trust(
    bundle_path: Path,
    venv_site_packages: str | None,
    *,
    sidecars: Sequence[str] = (),
    hostnames: Sequence[str] = (),
    proxy_port: int = PROXY_PORT,
) -> TrustPlan:
    """The plan for a sandbox that trusts the bundle at `bundle_path` (GradingCA.bundle_path).

    `venv_site_packages` is the dependency venv's site-packages inside the image, given only when certifi is
    installed there (a mount creates its target: it would leave an empty `certifi/` that imports as a namespace
    package). `sidecars` are companion service names the app reaches directly (NO_PROXY). `hostnames` adds
    served names found in the repository that no fixed entry covers, such as `myresource.openai.azure.com`."""
    unserved = [name for name in hostnames if not is_served_host(name)]
    if unserved:
        raise SandboxError(f"not provider hosts the gateway serves: {', '.join(map(repr, unserved))}")
    bundle = str(bundle_path.resolve())
    mounts = {BUNDLE_INSIDE: bundle, SYSTEM_STORE_INSIDE: bundle}
    if venv_site_packages:
        mounts[f"{venv_site_packages.rstrip('/')}/certifi/cacert.pem"] = bundle
    proxy = f"http://127.0.0.1:{proxy_port}"
    no_proxy = ",".join(dict.fromkeys([*LOOPBACK, *sidecars]))
    env = dict.fromkeys(PROXY_VARIABLES, proxy)
    env |= {"NO_PROXY": no_proxy, "no_proxy": no_proxy}
    env |= dict.fromkeys(CA_BUNDLE_VARIABLES, BUNDLE_INSIDE)
    fixed = [host for host in SERVED_PROVIDER_HOSTS if not host.startswith("*.")]
    return TrustPlan(
        mounts=mounts,
        env=env,
        extra_hosts=dict.fromkeys([*fixed, *(name.rstrip(".").lower() for name in hostnames)], "127.0.0.1"),
        sysctls={"net.ipv4.ip_unprivileged_port_start": "0"},
        forwards=[(proxy_port, f"{SOCKETS_INSIDE}/{PROXY_SOCKET}"), (TLS_PORT, f"{SOCKETS_INSIDE}/{TLS_SOCKET}")],
    )
