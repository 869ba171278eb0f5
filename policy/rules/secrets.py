"""Secret-looking material in text a resource stores in the clear (VM custom data): found, never echoed."""

from __future__ import annotations

import base64
import binascii
import re

_ASSIGNMENT = re.compile(
    r"(?P<name>(?:[A-Za-z_][\w.-]*?)?(?:token|pat|password|passwd|secret|apikey|api_key|accountkey|access_key)"
    r"(?![a-z])[\w-]*)"
    r"\s*[:=]\s*(?:\"(?P<double>[^\"]*)\"|'(?P<single>[^']*)'|(?P<bare>[^\s'\"]+))",
    re.IGNORECASE,
)
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
# Azure DevOps personal access tokens: 52 characters of base32 (the classic form).
_DEVOPS_PAT = re.compile(r"(?<![a-z2-7])[a-z2-7]{52}(?![a-z2-7])")
_CONNECTION_STRING_KEY = re.compile(r"(AccountKey|SharedAccessKey)=[A-Za-z0-9+/=]{20,}")
_SAS_SIGNATURE = re.compile(r"[?&]sig=[A-Za-z0-9%+/=]{20,}")


def decode_custom_data(value: str) -> str:
    """The text of base64 custom data (as ARM takes it), or the value itself when it is not base64."""
    try:
        return base64.b64decode(value, validate=True).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return value


def _is_reference(value: str) -> bool:
    # A shell variable, a command substitution, a template placeholder or a file path carries no secret itself.
    return value.startswith(("$", "`", "{{", "<", "%", "/", "./")) or value.lower() in {
        "true",
        "false",
        "none",
        "null",
    }


def secret_findings(text: str) -> list[str]:
    """What in `text` looks like a secret, by kind and line number (the value itself is never repeated)."""
    findings = []
    for number, line in enumerate(text.splitlines(), start=1):
        for match in _ASSIGNMENT.finditer(line):
            value = match["double"] or match["single"] or match["bare"] or ""
            if len(value) >= 8 and not _is_reference(value):
                findings.append(f"line {number}: {match['name']} is set to a literal value")
        if _PRIVATE_KEY.search(line):
            findings.append(f"line {number}: a private key")
        if _DEVOPS_PAT.search(line):
            findings.append(f"line {number}: a token shaped like an Azure DevOps PAT")
        if _CONNECTION_STRING_KEY.search(line) or _SAS_SIGNATURE.search(line):
            findings.append(f"line {number}: a storage key or SAS signature")
    return list(dict.fromkeys(findings))
