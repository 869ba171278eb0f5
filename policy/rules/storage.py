"""Storage account and blob service rules: transport, anonymous access, keys, network, soft delete."""

from __future__ import annotations

from . import types as t
from .core import A, M, Check, Rule, StackRule, Subject, forbid, require, rule
from .values import get


def _tls(subject: Subject) -> str | None:
    version = get(subject.props, "minimumTlsVersion")
    return (
        None
        if version in ("TLS1_2", "TLS1_3")
        else f"`minimumTlsVersion` is {version!r}, must be TLS1_2 or later"
    )


def retention(path: str, days: int) -> Check:
    """A soft-delete policy at `path` that is on and keeps at least `days` days."""

    def check(subject: Subject) -> str | None:
        policy = get(subject.props, path) or {}
        kept = policy.get("days")
        # Numbers cross the engine's wire as floats (7.0): compare as numbers.
        if policy.get("enabled") is True and isinstance(kept, (int, float)) and kept >= days:
            return None
        return f"`{path}` is {policy or None!r}, must be enabled for at least {days} days"

    return check


RULES: tuple[Rule, ...] = (
    rule(
        "storage-https-only",
        t.STORAGE,
        M,
        "Storage accepts HTTPS only.",
        "set enable_https_traffic_only=True",
        require("enableHttpsTrafficOnly", True, "plain HTTP is accepted"),
    ),
    rule(
        "storage-min-tls-1-2",
        t.STORAGE,
        M,
        "Storage requires TLS 1.2 or later.",
        'set minimum_tls_version="TLS1_2"',
        _tls,
    ),
    rule(
        "storage-no-public-blob-access",
        t.STORAGE,
        M,
        "No anonymous read access to blobs.",
        "set allow_blob_public_access=False",
        require("allowBlobPublicAccess", False, "blobs can be made public"),
    ),
    rule(
        "storage-shared-key-disabled",
        t.STORAGE,
        A,
        "Shared key (account key) access is off where Azure ML allows it. Advisory: no Microsoft source confirms "
        "Kubernetes online endpoints or batch endpoints with shared keys off (AZURE-FACTS 33), so it is a switch.",
        'set allow_shared_key_access=False and the workspace\'s system_datastores_auth_mode="identity"',
        require("allowSharedKeyAccess", False, "account keys authorize requests"),
        source="how-to-disable-local-auth-storage.md (preview)",
    ),
    rule(
        "storage-no-cross-tenant-replication",
        t.STORAGE,
        A,
        "Objects are not replicated to other tenants.",
        "set allow_cross_tenant_replication=False",
        forbid("allowCrossTenantReplication", True, "cross-tenant replication is allowed"),
    ),
    rule(
        "storage-public-network-disabled",
        t.STORAGE,
        M,
        "Storage is reached through private endpoints only.",
        'set public_network_access="Disabled" and add blob/file private endpoints (prod profile)',
        require("publicNetworkAccess", "Disabled", "public network access is on"),
        network_isolation=True,
    ),
    rule(
        "storage-blob-soft-delete",
        t.BLOB_SERVICE,
        M,
        "Deleted blobs are kept at least 7 days.",
        "set delete_retention_policy=DeleteRetentionPolicyArgs(enabled=True, days=7 or more)",
        retention("deleteRetentionPolicy", 7),
    ),
    rule(
        "storage-container-soft-delete",
        t.BLOB_SERVICE,
        M,
        "Deleted containers are kept at least 7 days.",
        "set container_delete_retention_policy=DeleteRetentionPolicyArgs(enabled=True, days=7 or more)",
        retention("containerDeleteRetentionPolicy", 7),
    ),
)

STACK_RULES: tuple[StackRule, ...] = ()
