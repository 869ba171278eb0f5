"""A fake Azure Resource Manager for preflight: `responses` answers the Azure SDK's real HTTP requests.

The payloads follow the REST API shapes of Microsoft's reference pages (providers, role assignments,
resource SKUs, usages, name checks, deleted vaults and workspaces); a scenario changes one of them.
"""

from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import responses
from azure.core.credentials import AccessToken

ARM = "https://management.azure.com"
SUBSCRIPTION = "00000000-0000-0000-0000-00000000abcd"
OBJECT_ID = "11111111-2222-3333-4444-555555555555"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"


def _jwt(claims: dict[str, Any]) -> str:
    encode = lambda part: base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=")  # noqa: E731
    return f"{encode({'alg': 'none'})}.{encode(claims)}.signature"


class FakeCredential:
    """A TokenCredential whose token carries an object id, as Entra's do; counts its calls."""

    def __init__(self, object_id: str | None = OBJECT_ID) -> None:
        self.object_id = object_id
        self.calls = 0

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls += 1
        claims = {"oid": self.object_id} if self.object_id else {}
        return AccessToken(_jwt(claims), int(time.time()) + 3600)


@dataclass
class Arm:
    """What the fake subscription holds; tests change fields, then `register` wires the responses."""

    location: str = "westeurope"
    unregistered: set[str] = field(default_factory=set)
    roles: list[str] = field(default_factory=lambda: [OWNER])
    role_scope: str = f"/subscriptions/{SUBSCRIPTION}"
    skus: dict[str, tuple[str, int]] = field(
        default_factory=lambda: {
            "Standard_DS3_v2": ("standardDSv2Family", 4),
            "Standard_D4s_v5": ("standardDSv5Family", 4),
            "Standard_B2s": ("standardBSFamily", 2),
        }
    )
    restricted: set[str] = field(default_factory=set)
    compute_usage: dict[str, tuple[int, int]] = field(
        default_factory=lambda: {
            "cores": (0, 100),
            "standardDSv5Family": (0, 100),
            "standardBSFamily": (0, 100),
        }
    )
    aml_usage: dict[str, tuple[int, int]] = field(
        default_factory=lambda: {"standardDSv2Family": (0, 100), "TotalLowPriorityCores": (0, 100)}
    )
    taken: set[str] = field(default_factory=set)
    """Names another subscription holds (storage, registry, Key Vault)."""
    deleted_vaults: dict[str, bool] = field(default_factory=dict)
    """Soft-deleted Key Vault name -> purge protection."""
    deleted_workspaces: list[str] = field(default_factory=list)
    """Ids of soft-deleted AML workspaces."""
    deleted_log_analytics: list[str] = field(default_factory=list)
    lists_deleted_workspaces: bool = True
    status_overrides: dict[str, int] = field(default_factory=dict)
    """URL path regex -> HTTP status to answer instead (e.g. 403)."""

    def register(self, mock: responses.RequestsMock) -> None:
        sub = f"{ARM}/subscriptions/{SUBSCRIPTION}"

        def on(method: str, pattern: re.Pattern[str], callback: Any) -> None:
            mock.add_callback(method, pattern, callback, content_type="application/json")

        on(responses.GET, re.compile(rf"{sub}/providers/[A-Za-z.]+(\?|$)"), self._provider)
        on(
            responses.GET,
            re.compile(
                rf"{ARM}/+subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleAssignments"
            ),
            self._roles,
        )
        on(responses.GET, re.compile(rf"{sub}/providers/Microsoft.Compute/skus"), self._skus)
        on(
            responses.GET,
            re.compile(rf"{sub}/providers/Microsoft.Compute/locations/\w+/usages"),
            self._compute_usage,
        )
        on(
            responses.GET,
            re.compile(rf"{sub}/providers/Microsoft.MachineLearningServices/locations/\w+/usages"),
            self._aml_usage,
        )
        for namespace in ("Microsoft.Storage", "Microsoft.ContainerRegistry", "Microsoft.KeyVault"):
            on(responses.POST, re.compile(rf"{sub}/providers/{namespace}/checkNameAvailability"), self._name)
        on(
            responses.GET,
            re.compile(rf"{sub}/providers/Microsoft.KeyVault/locations/\w+/deletedVaults/[\w-]+"),
            self._deleted_vault,
        )
        on(
            responses.GET,
            re.compile(
                rf"{sub}/resourceGroups/[\w-]+/providers/Microsoft\.(Storage/storageAccounts|ContainerRegistry/registries|KeyVault/vaults)/[\w-]+"
            ),
            lambda request: (
                404,
                {},
                json.dumps({"error": {"code": "ResourceNotFound", "message": "not found"}}),
            ),
        )
        on(
            responses.GET,
            re.compile(rf"{sub}/providers/Microsoft.MachineLearningServices/deletedWorkspaces"),
            lambda request: self._listing(
                request, [{"id": i, "name": i.rsplit("/", 1)[-1]} for i in self.deleted_workspaces]
            ),
        )
        on(
            responses.GET,
            re.compile(rf"{sub}/providers/Microsoft.OperationalInsights/deletedWorkspaces"),
            lambda request: self._listing(
                request, [{"id": i, "name": i.rsplit("/", 1)[-1]} for i in self.deleted_log_analytics]
            ),
        )

    def _override(self, request: Any) -> tuple[int, dict, str] | None:
        for pattern, status in self.status_overrides.items():
            if re.search(pattern, request.url):
                return status, {}, json.dumps({"error": {"code": "AuthorizationFailed", "message": "denied"}})
        return None

    def _json(self, request: Any, body: Any) -> tuple[int, dict, str]:
        return self._override(request) or (200, {}, json.dumps(body))

    def _listing(self, request: Any, items: list[Any]) -> tuple[int, dict, str]:
        return self._json(request, {"value": items})

    def _provider(self, request: Any) -> tuple[int, dict, str]:
        namespace = request.url.split("?")[0].rsplit("/", 1)[-1]
        types = [{"resourceType": "workspaces", "apiVersions": ["2025-06-01"]}]
        if namespace == "Microsoft.MachineLearningServices" and self.lists_deleted_workspaces:
            types.append({"resourceType": "deletedWorkspaces", "apiVersions": ["2024-10-01", "2025-06-01"]})
        state = "NotRegistered" if namespace in self.unregistered else "Registered"
        return self._json(
            request,
            {
                "id": f"/subscriptions/{SUBSCRIPTION}/providers/{namespace}",
                "namespace": namespace,
                "registrationState": state,
                "resourceTypes": types,
            },
        )

    def _roles(self, request: Any) -> tuple[int, dict, str]:
        items = [
            {
                "id": f"{self.role_scope}/providers/Microsoft.Authorization/roleAssignments/{index}",
                "name": str(index),
                "type": "Microsoft.Authorization/roleAssignments",
                "properties": {
                    "roleDefinitionId": f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/{role}",
                    "principalId": OBJECT_ID,
                    "scope": self.role_scope,
                },
            }
            for index, role in enumerate(self.roles)
        ]
        return self._listing(request, items)

    def _skus(self, request: Any) -> tuple[int, dict, str]:
        items = [
            {
                "resourceType": "virtualMachines",
                "name": name,
                "family": family,
                "locations": [self.location],
                "capabilities": [{"name": "vCPUs", "value": str(vcpus)}],
                "restrictions": [
                    {
                        "type": "Location",
                        "values": [self.location],
                        "reasonCode": "NotAvailableForSubscription",
                    }
                ]
                if name in self.restricted
                else [],
            }
            for name, (family, vcpus) in self.skus.items()
        ]
        return self._listing(request, items)

    def _compute_usage(self, request: Any) -> tuple[int, dict, str]:
        return self._listing(
            request,
            [
                {
                    "name": {"value": name, "localizedValue": name},
                    "currentValue": used,
                    "limit": limit,
                    "unit": "Count",
                }
                for name, (used, limit) in self.compute_usage.items()
            ],
        )

    def _aml_usage(self, request: Any) -> tuple[int, dict, str]:
        return self._listing(
            request,
            [
                {
                    "name": {"value": name, "localizedValue": name},
                    "currentValue": used,
                    "limit": limit,
                    "unit": "Count",
                    "type": "Microsoft.MachineLearningServices/vmFamily",
                }
                for name, (used, limit) in self.aml_usage.items()
            ],
        )

    def _name(self, request: Any) -> tuple[int, dict, str]:
        name = json.loads(request.body)["name"]
        if name in self.taken:
            return self._json(
                request,
                {"nameAvailable": False, "reason": "AlreadyExists", "message": f"{name} is already taken"},
            )
        return self._json(request, {"nameAvailable": True})

    def _deleted_vault(self, request: Any) -> tuple[int, dict, str]:
        name = request.url.split("?")[0].rsplit("/", 1)[-1]
        if name not in self.deleted_vaults:
            return (
                404,
                {},
                json.dumps({"error": {"code": "DeletedVaultNotFound", "message": "no such vault"}}),
            )
        return self._json(
            request,
            {
                "id": f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.KeyVault/locations/{self.location}/deletedVaults/{name}",
                "name": name,
                "properties": {
                    "location": self.location,
                    "scheduledPurgeDate": "2027-03-01T00:00:00Z",
                    "purgeProtectionEnabled": self.deleted_vaults[name],
                },
            },
        )
