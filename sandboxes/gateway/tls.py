"""A certificate authority made for one grading, so the provider proxy can terminate TLS for provider hostnames.

The sandbox trusts the CA's certificate (mounted read-only into it); the CA's private key exists only in this
process's memory and is never written anywhere, so nothing the sandbox can read or reach holds it. Leaf certificates
are short-lived ECDSA P-256 certificates for one hostname each, issued when the proxy first serves that name. The CA
is name-constrained to the names it was made for: even its key could vouch for nothing else.
"""

from __future__ import annotations

import datetime
import os
import ssl
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sandboxes.errors import SandboxError
from sandboxes.gateway.clients import SERVED_PROVIDER_HOSTS

CA_CERT_NAME = "ca.pem"
BUNDLE_NAME = "ca-bundle.pem"
SYSTEM_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
CA_LIFETIME = datetime.timedelta(hours=24)
"""Long enough for the slowest grading; a CA left behind by a crash is worthless a day later."""
LEAF_LIFETIME = datetime.timedelta(hours=24)
CLOCK_SKEW = datetime.timedelta(minutes=5)
"""Certificates start a little in the past: a container's clock may lag the host's."""
MAX_CACHED_LEAVES = 64
"""Leaves kept ready; a client that asks for many names (any `<resource>.openai.azure.com`) cannot grow memory."""


class GradingCA:
    """A CA for one grading: its certificate on disk (public), its key in memory only."""

    def __init__(self, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey, cert_path: Path) -> None:
        self.certificate = certificate
        self.cert_path = cert_path
        """The CA certificate alone (PEM)."""
        self.bundle_path = cert_path.with_name(BUNDLE_NAME)
        """The system roots plus this CA (PEM): the file to mount into the sandbox as its trust store."""
        self._key = key
        self._leaves: OrderedDict[str, ssl.SSLContext] = OrderedDict()
        self._lock = threading.Lock()
        self.issued: list[str] = []
        """Every hostname a leaf was issued for, in order (a name issued again after eviction appears again)."""

    @classmethod
    def create(
        cls,
        directory: Path,
        *,
        names: Iterable[str] = SERVED_PROVIDER_HOSTS,
        base_bundle: Path | None = None,
        lifetime: datetime.timedelta = CA_LIFETIME,
    ) -> GradingCA:
        """Make a CA and write `ca.pem` and `ca-bundle.pem` (readable by all) into `directory`.

        `names` are the hostnames the CA may vouch for, each with its subdomains (`*.openai.azure.com` allows any
        name under openai.azure.com): by default the provider hosts the gateway serves; empty leaves it
        unconstrained. `base_bundle` is the system roots the bundle starts from (default: certifi's, else the
        host's system store)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Viva grading CA {os.urandom(4).hex()}")])
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + lifetime)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        )
        subtrees = sorted({_subtree(name) for name in names})
        if subtrees:
            permitted: list[x509.GeneralName] = [x509.DNSName(subtree) for subtree in subtrees]
            builder = builder.add_extension(
                x509.NameConstraints(permitted_subtrees=permitted, excluded_subtrees=None), critical=True
            )
        certificate = builder.sign(key, hashes.SHA256())
        directory.mkdir(parents=True, exist_ok=True)
        cert_path = directory / CA_CERT_NAME
        pem = certificate.public_bytes(serialization.Encoding.PEM)
        _write_public(cert_path, pem)
        ca = cls(certificate, key, cert_path)
        _write_public(ca.bundle_path, trust_bundle(pem, base_bundle))
        return ca

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def leaf_context(self, hostname: str) -> ssl.SSLContext:
        """A server-side TLS context presenting a leaf for `hostname` signed by this CA (issued once, then cached).
        The caller decides which names are served; this refuses only what is not a DNS name."""
        name = _dns_name(hostname)
        with self._lock:
            context = self._leaves.get(name)
            if context is not None:
                self._leaves.move_to_end(name)
                return context
            context = self._issue(name)
            self._leaves[name] = context
            self.issued.append(name)
            while len(self._leaves) > MAX_CACHED_LEAVES:
                self._leaves.popitem(last=False)
            return context

    def _issue(self, name: str) -> ssl.SSLContext:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        not_after = min(now + LEAF_LIFETIME, self.certificate.not_valid_after_utc)
        ca_key_id = x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key())
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(ca_key_id, critical=False)
            .sign(self._key, hashes.SHA256())
        )
        return _server_context(leaf, key)


def trust_bundle(ca_cert: bytes, base_bundle: Path | None = None) -> bytes:
    """The system roots (certifi's, else the host's system store, unless `base_bundle` names one) followed by
    `ca_cert` (PEM): a trust store where the usual roots still verify and the grading's CA does too."""
    base = (base_bundle or _default_bundle()).read_bytes()
    if not base.endswith(b"\n"):
        base += b"\n"
    return base + b"# Viva grading CA\n" + ca_cert


def _default_bundle() -> Path:
    try:
        import certifi  # noqa: PLC0415 - optional: the host's system store serves when certifi is absent
    except ImportError:
        return SYSTEM_BUNDLE
    return Path(certifi.where())


def _server_context(leaf: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> ssl.SSLContext:
    """`ssl` loads a certificate chain only from files: the leaf and its key pass through a private temporary
    directory (mode 0700, the file 0600) that is removed as soon as they are loaded."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])  # the gateway speaks HTTP/1.1: a client offering h2 settles for it
    pem = leaf.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with tempfile.TemporaryDirectory(prefix="viva-leaf-") as private:
        path = Path(private) / "leaf.pem"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(pem)
        context.load_cert_chain(path)
    return context


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _subtree(pattern: str) -> str:
    """`*.openai.azure.com` → `openai.azure.com` (a DNS name constraint covers the name and everything under it)."""
    return _dns_name(pattern.removeprefix("*."))


def _dns_name(hostname: str) -> str:
    name = hostname.strip().rstrip(".").lower()
    if not is_hostname(name):
        raise SandboxError(f"a leaf certificate names a DNS host, not {hostname!r}")
    return name


def is_hostname(name: str) -> bool:
    """A DNS hostname of two labels or more (letters, digits, inner hyphens), not an IP address."""
    labels = name.split(".")
    return (
        len(name) <= 253
        and len(labels) >= 2
        and not labels[-1].isdigit()  # 10.0.0.1 and the like
        and all(_is_label(label) for label in labels)
    )


def _is_label(label: str) -> bool:
    return (
        0 < len(label) <= 63
        and label.strip("-") == label
        and all(char.isascii() and (char.isalnum() or char == "-") for char in label)
    )


def _write_public(path: Path, contents: bytes) -> None:
    path.write_bytes(contents)
    os.chmod(path, 0o644)  # a certificate: the sandbox user (uid 1000) reads it through a mount
