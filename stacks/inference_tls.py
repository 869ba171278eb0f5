"""Checks of the AKS inference router's TLS material: host name, PEM certificate chain and key (no Pulumi)."""

from __future__ import annotations

import datetime
import functools
import re

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def hostname_problem(name: str) -> str | None:
    """Why `name` cannot be the sslCname and the name of its private DNS zone, or None.

    A private DNS zone needs at least two labels (Learn: "Azure Private DNS zone": single-label zones are
    not supported), and the certificate must name it exactly.
    """
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        return (
            "must be a lowercase host name of at least two labels (letters, digits, inner hyphens), e.g. "
            "ml-scoring.contoso.com; no wildcard, no trailing dot"
        )
    return None


def certificate_problems(
    cert_pem: str, key_pem: str, host: str, now: datetime.datetime | None = None
) -> tuple[list[str], list[str]]:
    """(problems of the certificate, problems of the key) for serving `host`; never quotes the PEM text.

    The extension takes a PEM chain and an unencrypted PEM key (how-to-secure-kubernetes-online-endpoint.md:
    "An SSL key in a PEM file with passphrase protection is not supported").
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert_problems: list[str] = []
    key_problems: list[str] = []
    try:
        chain = x509.load_pem_x509_certificates(cert_pem.encode())
    except ValueError:
        return ["must be a PEM certificate chain (-----BEGIN CERTIFICATE----- ...), leaf first"], []
    leaf = chain[0]
    moment = now or datetime.datetime.now(datetime.timezone.utc)
    if not leaf.not_valid_before_utc <= moment <= leaf.not_valid_after_utc:
        cert_problems.append(
            f"is not valid now (valid {leaf.not_valid_before_utc:%Y-%m-%d} to {leaf.not_valid_after_utc:%Y-%m-%d})"
        )
    names = _dns_names(leaf)
    if not any(_covers(pattern, host) for pattern in names):
        cert_problems.append(f"does not name {host} (it names {', '.join(names) or 'no DNS name'})")
    if "ENCRYPTED" in key_pem:
        key_problems.append("is passphrase-protected; the extension needs an unencrypted PEM key")
        return cert_problems, key_problems
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except (ValueError, TypeError):
        key_problems.append("must be a PEM private key (-----BEGIN PRIVATE KEY----- ...)")
        return cert_problems, key_problems
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.DER, public) != leaf.public_key().public_bytes(
        serialization.Encoding.DER, public
    ):
        key_problems.append("does not belong to the certificate in inferenceSslCertPem")
    return cert_problems, key_problems


def _dns_names(certificate: object) -> list[str]:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)  # type: ignore[attr-defined]
        return [name.lower() for name in san.value.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        common = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)  # type: ignore[attr-defined]
        return [str(attribute.value).lower() for attribute in common]


def _covers(pattern: str, host: str) -> bool:
    """RFC 6125: a wildcard stands for exactly one left-most label."""
    if pattern.startswith("*."):
        return "." in host and host.split(".", 1)[1] == pattern[2:]
    return pattern == host


@functools.lru_cache(maxsize=4)
def self_signed_pem(host: str) -> tuple[str, str]:
    """(certificate, key) PEMs of a fresh self-signed EC certificate for `host`: example config and tests only.

    Self-signed certificates are for development only (how-to-secure-kubernetes-online-endpoint.md).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()
