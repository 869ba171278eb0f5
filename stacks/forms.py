"""Allowed forms of config values: each parses the string a key arrives as, or says what form is allowed.

A form is the small vocabulary stacks/schema.py gives every key (`form=`): a key's value is checked
against its form once, in one pass over the schema, before any cross-key rule runs. Messages say the
allowed form; stacks/config.py adds the key and the value (masked where secret).
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any, Sequence

from stacks.inference_tls import hostname_problem

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# The CLI's own integer check is Go's strconv.Atoi (pkg/workspace: ValidateConfigValue): optional sign
# and digits only. Python's int() would also take " 2", "2_0" and "٢", which the CLI refuses.
INTEGER = re.compile(r"^[+-]?[0-9]+$")
# The key types `ssh-keygen` writes and Azure accepts for Linux VMs (Learn: "Supported SSH key formats").
SSH_PUBLIC_KEY = re.compile(
    r"^(ssh-rsa|ssh-ed25519|ecdsa-sha2-nistp(256|384|521)) (AAAA[A-Za-z0-9+/]+={0,3})( \S.*)?$"
)
VM_SIZE = re.compile(r"^(Standard|Basic)_[A-Z][A-Za-z0-9]*(_[A-Za-z0-9]+)*$")
# What an action group's email receiver takes: one mailbox, no display name (Learn: "Action groups").
EMAIL = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
# A webhook receiver's serviceUri: https only here, a host, an optional path, no spaces.
HTTPS_URL = re.compile(r"^https://[^\s/?#@]+(/\S*)?$")
DECIMAL = re.compile(r"^[0-9]+(\.[0-9]+)?$")
_PRIVATE_KEY_MARKERS = (
    "PRIVATE KEY-----",  # PEM / OpenSSH private keys: "-----BEGIN (OPENSSH |RSA |EC )?PRIVATE KEY-----"
    "PuTTY-User-Key-File",  # PuTTY .ppk files
    "b3BlbnNzaC1rZXktdjE",  # base64 of "openssh-key-v1", the body of an OpenSSH private key
)
# Azure DevOps personal access tokens: 52 lowercase base32 characters, or the 84-character format that
# carries the "AZDO" signature. A value of that shape in a non-secret key is masked all the same.
_PAT = re.compile(r"^([a-z2-7]{52}|[A-Za-z0-9]{76}AZDO[A-Za-z0-9]{4})$")
SHOWN_CHARS = 48


class FormError(ValueError):
    """A value outside its form; the message says what is allowed (without repeating the value)."""


def looks_like_private_key(value: str) -> bool:
    """Whether `value` holds private key material (never to be printed, wherever it was put)."""
    return any(marker in value for marker in _PRIVATE_KEY_MARKERS)


def looks_like_token(value: str) -> bool:
    """Whether `value` has the shape of an Azure DevOps PAT."""
    return bool(_PAT.match(value.strip()))


def shown_value(value: str, secret: bool) -> str:
    """A config value as messages may show it: masked when secret or key-like, shortened when long."""
    if secret:
        return "[secret]"
    if looks_like_private_key(value):
        return "[a private key, not shown]"
    if looks_like_token(value):
        return "[a token, not shown]"
    if len(value) > SHOWN_CHARS:
        return f"{value[: SHOWN_CHARS - 8]}… ({len(value)} characters)"
    return value


class Form:
    """Parses one config string; `allowed` says the allowed form in words, for messages and docs."""

    allowed = "any text"

    def parse(self, text: str) -> Any:
        return text


class Text(Form):
    """Free text, optionally bounded in length and matched against a pattern."""

    def __init__(self, allowed: str = "any text", pattern: str | None = None, max_length: int = 0) -> None:
        self.allowed = allowed
        self.pattern = re.compile(pattern) if pattern else None
        self.max_length = max_length

    def parse(self, text: str) -> str:
        if text == "":
            raise FormError(f"is empty; it must be {self.allowed}")
        if (self.max_length and len(text) > self.max_length) or (
            self.pattern and not self.pattern.match(text)
        ):
            raise FormError(f"must be {self.allowed}")
        return text


class Integer(Form):
    """A whole number in a closed range (as text: the CLI hands every value over as a string)."""

    def __init__(self, low: int, high: int, unit: str = "") -> None:
        self.low, self.high = low, high
        self.allowed = f"a whole number from {low} to {high}{f' {unit}' if unit else ''}"

    def parse(self, text: str) -> int:
        if not INTEGER.match(text):
            raise FormError(f"must be {self.allowed}")
        number = int(text)
        if not self.low <= number <= self.high:
            raise FormError(f"is out of range: it must be {self.allowed}")
        return number


class Boolean(Form):
    """`true` or `false`, the only spellings the CLI accepts for a boolean key (ValidateConfigValue)."""

    allowed = "true or false"

    def parse(self, text: str) -> bool:
        if text not in ("true", "false"):
            raise FormError("must be true or false (lowercase, as the Pulumi CLI writes booleans)")
        return text == "true"


class Choice(Form):
    """One of a fixed set of spellings (case matters: Azure's enums are case-sensitive in places)."""

    def __init__(self, options: Sequence[str]) -> None:
        self.options = tuple(options)
        self.allowed = f"one of {', '.join(self.options)}"

    def parse(self, text: str) -> str:
        if text not in self.options:
            near = [option for option in self.options if option.lower() == text.lower()]
            hint = f" (did you mean {near[0]}?)" if near else ""
            raise FormError(f"must be {self.allowed}{hint}")
        return text


class Cidr(Form):
    """An IPv4 network written with its prefix length and no host bits, within size limits."""

    def __init__(self, example: str, smallest: int = 32, largest: int = 0, limits: str = "") -> None:
        self.example, self.smallest, self.largest, self.limits = example, smallest, largest, limits
        self.allowed = f"an IPv4 CIDR with its prefix length, e.g. {example}"

    def parse(self, text: str) -> ipaddress.IPv4Network:
        if "/" not in text:
            raise FormError(
                f"has no prefix length; write the network with one, e.g. {self.example} "
                "(a bare address would be read as a single /32 address)"
            )
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise FormError(f"must be {self.allowed}") from None
        if network.version != 4:
            raise FormError(f"must be an IPv4 CIDR (this platform plans IPv4 only), e.g. {self.example}")
        if str(network) != text:
            raise FormError(f"has host bits set: the network of that prefix is {network}; write that")
        if network.prefixlen > self.smallest:
            raise FormError(
                f"is a /{network.prefixlen} ({network.num_addresses} addresses): {self.limits}; "
                f"use a prefix length of /{self.smallest} or shorter"
            )
        if network.prefixlen < self.largest:
            raise FormError(
                f"is a /{network.prefixlen}: {self.limits}; use a prefix length of /{self.largest} or longer"
            )
        return network


class Address(Form):
    """A single IPv4 address."""

    allowed = "an IPv4 address, e.g. 10.100.0.10"

    def parse(self, text: str) -> ipaddress.IPv4Address:
        try:
            return ipaddress.IPv4Address(text)
        except ValueError:
            raise FormError(f"must be {self.allowed} (without a prefix length)") from None


class VmSize(Form):
    """An Azure VM size name; whether the region offers it is for preflight to ask Azure."""

    allowed = "an Azure VM size such as Standard_DS3_v2 or Standard_D4s_v5"

    def parse(self, text: str) -> str:
        if not VM_SIZE.match(text):
            raise FormError(f"must be {self.allowed}")
        return text


class _ItemList(Form):
    """A YAML list of strings of one form, as `pulumi config set --path 'key[0]' <value>` writes it."""

    item_name, items_name = "item", "items"
    example = "<value>"

    def __init__(self, what: str) -> None:
        self.what = what
        self.allowed = f"a list of {what}, e.g. [{json.dumps(self.example)}]"

    def item_ok(self, item: str) -> bool:
        return True

    def parse(self, text: str) -> tuple[str, ...]:
        try:
            items = json.loads(text)
        except json.JSONDecodeError:
            items = None
        if not isinstance(items, list):
            raise FormError(
                f"is not a list; it must be {self.allowed}: a YAML list in the stack file, or "
                f"`pulumi config set --path '<key>[0]' {self.example}`"
            )
        wrong = [str(item) for item in items if not (isinstance(item, str) and self.item_ok(item))]
        if wrong:
            raise FormError(
                f"has {len(wrong)} item(s) that are not {self.items_name}; it must be {self.allowed}"
            )
        if len(set(item.lower() for item in items)) != len(items):
            raise FormError(f"lists the same {self.item_name} twice; list each once")
        return tuple(items)


class GuidList(_ItemList):
    """A list of GUIDs (Entra or Azure DevOps ids)."""

    item_name, items_name = "GUID", "GUIDs"
    example = "<guid>"

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} (GUIDs)")

    def item_ok(self, item: str) -> bool:
        return bool(GUID.match(item))


class EmailList(_ItemList):
    """A list of email addresses, one mailbox each."""

    item_name, items_name = "email address", "email addresses"
    example = "oncall@yourcompany.com"

    def item_ok(self, item: str) -> bool:
        return bool(EMAIL.match(item))


class HttpsUrl(Form):
    """An https:// URL (plain http would carry alert payloads, and tokens in the URL, in clear text)."""

    def __init__(self, purpose: str) -> None:
        self.allowed = f"an https:// URL ({purpose})"

    def parse(self, text: str) -> str:
        if not HTTPS_URL.match(text):
            raise FormError(f"must be {self.allowed}")
        return text


class Decimal(Form):
    """A decimal number in a half-open range (low, high], written with digits and an optional point."""

    def __init__(self, low: float, high: float, example: str, note: str = "") -> None:
        self.low, self.high = low, high
        self.allowed = f"a number above {low:g} and at most {high:g}, e.g. {example}{note}"

    def parse(self, text: str) -> float:
        value = float(text) if DECIMAL.match(text) else None
        if value is None or not self.low < value <= self.high:
            raise FormError(f"must be {self.allowed}")
        return value


class HostName(Form):
    """A DNS host name of at least two labels (a certificate's name and a private DNS zone's name)."""

    allowed = "a lowercase host name of at least two labels, e.g. ml-scoring.yourcompany.com"

    def parse(self, text: str) -> str:
        problem = hostname_problem(text)
        if problem:
            raise FormError(problem)
        return text


class PemCertificate(Form):
    """A PEM certificate chain; a private key pasted here is refused without being shown."""

    allowed = "a PEM certificate chain (-----BEGIN CERTIFICATE----- ...), leaf first, set with --secret"

    def __init__(self, key_name: str) -> None:
        self.key_name = key_name

    def parse(self, text: str) -> str:
        if looks_like_private_key(text):
            raise FormError(
                f"holds a private key (not shown here), which belongs in {self.key_name}; "
                f"set this key to {self.allowed}"
            )
        if "-----BEGIN CERTIFICATE-----" not in text:
            raise FormError(f"must be {self.allowed}")
        return text


class PemPrivateKey(Form):
    """An unencrypted PEM private key."""

    allowed = "an unencrypted PEM private key (-----BEGIN PRIVATE KEY----- ...), set with --secret"

    def __init__(self, certificate_name: str) -> None:
        self.certificate_name = certificate_name

    def parse(self, text: str) -> str:
        if "ENCRYPTED" in text:
            raise FormError(
                "is passphrase-protected; the extension needs an unencrypted PEM key "
                "(`openssl pkey -in key.pem -out plain.pem` removes the passphrase)"
            )
        if "-----BEGIN" not in text or "PRIVATE KEY-----" not in text:
            hint = f" (a certificate belongs in {self.certificate_name})" if "CERTIFICATE" in text else ""
            raise FormError(f"must be {self.allowed}{hint}")
        return text


class Guid(Form):
    """One GUID (an Entra application or object id)."""

    def __init__(self, what: str) -> None:
        self.allowed = f"{what}, a GUID like 00000000-0000-0000-0000-000000000000"

    def parse(self, text: str) -> str:
        if not GUID.match(text):
            raise FormError(f"must be {self.allowed}")
        return text


class SshPublicKey(Form):
    """An OpenSSH public key line; a private key pasted here is refused without being shown."""

    allowed = "an OpenSSH public key line ('ssh-ed25519 AAAA...' or 'ssh-rsa AAAA...')"

    def parse(self, text: str) -> str:
        if looks_like_private_key(text):
            raise FormError(
                "holds a PRIVATE key (it is not shown here): remove it with `pulumi config rm`, treat the "
                "key as leaked if it was committed, and set the public half, the .pub file: "
                '`pulumi config set agentSshPublicKey "$(cat ~/.ssh/id_ed25519.pub)"`'
            )
        if not SSH_PUBLIC_KEY.match(text.strip()):
            raise FormError(f"must be {self.allowed}, the one line of a .pub file")
        return text.strip()


def form_for_type(config_type: str) -> Form:
    """The form of a key declared without one: what its schema type alone allows."""
    return {"integer": Integer(-(2**63), 2**63 - 1), "boolean": Boolean(), "array": _StringList()}.get(
        config_type, Form()
    )


class _StringList(Form):
    allowed = 'a list of strings, e.g. ["a", "b"]'

    def parse(self, text: str) -> tuple[str, ...]:
        try:
            items = json.loads(text)
        except json.JSONDecodeError:
            items = None
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise FormError(f"must be {self.allowed}")
        return tuple(items)
