"""Run the Pulumi program under the SDK's mock runtime and record every registration it makes."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import pulumi
from google.protobuf import struct_pb2
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime import settings as pulumi_settings

from stacks.arm_ids import arm_id, physical_name
from stacks.model import SECRET_MASK

SUBSCRIPTION_ID = "00000000-0000-0000-0000-000000000001"
TENANT_ID = "00000000-0000-0000-0000-00000000000a"
CLIENT_ID = "00000000-0000-0000-0000-0000000000c1"
OBJECT_ID = "00000000-0000-0000-0000-0000000000b1"
_IDS = uuid.UUID("6f1c1d3e-9a51-4a7b-8c1e-5f3a2b7d9e10")


@dataclass(frozen=True)
class RecordedResource:
    """One resource registration as the engine would see it (inputs camelCase, secrets masked)."""

    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    inputs: Mapping[str, Any]
    dependencies: tuple[str, ...]
    protect: bool
    retain_on_delete: bool
    provider: str | None
    secret_paths: tuple[str, ...] = ()
    hooks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Resource hooks bound per lifecycle event, e.g. {"after_create": ("mlops-post-deploy-dev",)}."""
    property_dependencies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Input name -> URNs its value comes from (what CrossGuard stack policies see), non-empty ones only."""
    aliases: tuple[tuple[str, str], ...] = ()
    """(former name, former parent URN) of each alias that renames or re-parents the resource."""


@dataclass
class Recording:
    """Everything one program run registered, in order, plus its stack outputs."""

    project: str
    stack: str
    resources: list[RecordedResource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type_token: str) -> list[RecordedResource]:
        return [resource for resource in self.resources if resource.type == type_token]

    def one(self, type_token: str) -> RecordedResource:
        found = self.of_type(type_token)
        if len(found) != 1:
            raise AssertionError(f"expected one {type_token}, found {len(found)}: {[r.name for r in found]}")
        return found[0]

    def by_name(self, name: str) -> RecordedResource:
        found = [resource for resource in self.resources if resource.name == name]
        if len(found) != 1:
            raise AssertionError(f"expected one resource named {name}, found {len(found)}")
        return found[0]

    def by_urn(self, urn: str) -> RecordedResource:
        return next(resource for resource in self.resources if resource.urn == urn)

    def duplicate_urns(self) -> list[str]:
        seen: set[str] = set()
        return [r.urn for r in self.resources if r.urn in seen or seen.add(r.urn)]  # type: ignore[func-returns-value]

    def children_of(self, urn: str) -> list[RecordedResource]:
        return [resource for resource in self.resources if resource.parent == urn]


def fake_id(type_token: str, name: str, inputs: Mapping[str, Any]) -> str:
    """The id Azure would give a mocked resource (see stacks/arm_ids.py), or a GUID for Azure DevOps objects."""
    if not type_token.startswith("azure-native:"):
        return str(uuid.uuid5(_IDS, f"{type_token}/{name}"))
    return arm_id(type_token, name, inputs, SUBSCRIPTION_ID)


class RecordingMocks(pulumi.runtime.Mocks):
    """Answers registrations with their inputs plus the outputs Azure would compute (ids, identities)."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        inputs = dict(args.inputs)
        name = physical_name(args.typ, args.name, inputs)
        resource_id = fake_id(args.typ, name, inputs)
        # Only what Azure computes comes back: echoing every input makes the SDK type-translate each one
        # again (about 40% of a plan's CPU), and the program reads no input back from a resource.
        state: dict[str, Any] = {"name": name, "id": resource_id}
        seed = f"{args.typ}/{args.name}"
        identity = inputs.get("identity")
        if isinstance(identity, dict):
            state["identity"] = _identity_output(identity, seed)
        state.update(_computed_outputs(args.typ, seed, name, inputs))
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        # A bare dict: the mock monitor reads a tuple as (outputs, failures) and iterates the failures.
        if args.token == "azure-native:authorization:getClientConfig":
            return {
                "clientId": CLIENT_ID,
                "objectId": OBJECT_ID,
                "subscriptionId": SUBSCRIPTION_ID,
                "tenantId": TENANT_ID,
            }
        if args.token == "azuredevops:index/getProject:getProject":
            name = str(args.args.get("name", "project"))
            return {
                "id": _guid("devops-project", name),
                "name": name,
                "projectId": _guid("devops-project", name),
            }
        return {}


def _identity_output(identity: Mapping[str, Any], seed: str) -> dict[str, Any]:
    """An identity as Azure returns it: ids for the system identity, user identities keyed by resource id."""
    output = dict(identity)
    if "SystemAssigned" in str(identity.get("type", "")):
        output.update(principalId=_guid("principal", seed), tenantId=TENANT_ID)
    user_identities = identity.get("userAssignedIdentities")
    if isinstance(user_identities, list):
        # Inputs list the identity ids; the output maps each id to its principal and client ids.
        output["userAssignedIdentities"] = {
            str(ident): {
                "principalId": _guid("principal", str(ident)),
                "clientId": _guid("client", str(ident)),
            }
            for ident in user_identities
        }
    return output


def _guid(kind: str, seed: str) -> str:
    return str(uuid.uuid5(_IDS, f"{kind}/{seed}"))


def _computed_outputs(type_token: str, seed: str, name: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Outputs the program reads that only Azure (or Azure DevOps) would compute."""
    if type_token == "azure-native:managedidentity:UserAssignedIdentity":
        return {
            "principalId": _guid("principal", seed),
            "clientId": _guid("client", seed),
            "tenantId": TENANT_ID,
        }
    if type_token == "azure-native:applicationinsights:Component":
        key = _guid("ikey", seed)
        return {
            "instrumentationKey": key,
            "connectionString": f"InstrumentationKey={key};IngestionEndpoint=x",
        }
    if type_token == "azure-native:containerregistry:Registry":
        return {"loginServer": f"{name}.azurecr.io"}
    if type_token == "azure-native:keyvault:Secret":
        uri = f"https://{inputs.get('vaultName', 'vault')}.vault.azure.net/secrets/{name}"
        version = _guid("secret-version", seed).replace("-", "")
        return {"properties": {"secretUri": uri, "secretUriWithVersion": f"{uri}/{version}"}}
    if type_token == "azure-native:operationalinsights:Workspace":
        return {"customerId": _guid("customer", seed)}
    if type_token == "azure-native:containerservice:ManagedCluster":
        return {
            "identity": {
                **_identity_output(dict(inputs.get("identity") or {}), seed),
                "principalId": _guid("principal", seed),
                "tenantId": TENANT_ID,
            },
            "identityProfile": {
                "kubeletidentity": {
                    "objectId": _guid("kubelet", seed),
                    "clientId": _guid("kubelet-client", seed),
                }
            },
            "oidcIssuerProfile": {
                "enabled": True,
                "issuerURL": f"https://oidc.example/{_guid('oidc', seed)}/",
            },
            "fqdn": f"{name}.hcp.example.azmk8s.io",
        }
    if type_token == "azuredevops:index/serviceEndpointAzureRM:ServiceEndpointAzureRM":
        return {
            "workloadIdentityFederationIssuer": f"https://vstoken.dev.azure.com/{_guid('org', seed)}",
            "workloadIdentityFederationSubject": f"sc://contoso/mlops/{name}",
            "servicePrincipalId": _guid("sp", seed),
        }
    return {}


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A MockMonitor that keeps every RegisterResource request, duplicates included."""

    def __init__(self, mocks: pulumi.runtime.Mocks, recording: Recording) -> None:
        super().__init__(mocks)
        self.recording = recording

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        # The engine leaves the root stack out of a child's type chain; the stock mock does not.
        if parent.split("::")[2:3] == ["pulumi:pulumi:Stack"]:
            parent = ""
        return super().make_urn(parent, type_, name)

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.recording.resources.append(_record(request, response.urn))
        return response


def _record(request: Any, urn: str) -> RecordedResource:
    pulumi_mocks._ensure_event_loop()
    secret_paths: list[str] = []
    inputs = _inputs(request.object, "", secret_paths)
    dependencies = set(request.dependencies)
    property_dependencies = {
        key: tuple(sorted(deps.urns))
        for key, deps in sorted(request.propertyDependencies.items())
        if deps.urns
    }
    for deps in property_dependencies.values():
        dependencies.update(deps)
    return RecordedResource(
        urn=urn,
        type=request.type,
        name=request.name,
        parent=None if not request.parent or "::pulumi:pulumi:Stack::" in request.parent else request.parent,
        custom=bool(request.custom),
        inputs=inputs,
        dependencies=tuple(sorted(dependencies)),
        protect=bool(request.protect) if request.HasField("protect") else False,
        retain_on_delete=bool(request.retainOnDelete) if request.HasField("retainOnDelete") else False,
        provider=request.provider or None,
        secret_paths=tuple(secret_paths),
        hooks=_hooks(request),
        property_dependencies=property_dependencies,
        aliases=tuple(
            (alias.spec.name, alias.spec.parentUrn)
            for alias in request.aliases
            if alias.HasField("spec") and alias.spec.name
        ),
    )


_HOOK_EVENTS = (
    "before_create",
    "after_create",
    "before_update",
    "after_update",
    "before_delete",
    "after_delete",
)


def _hooks(request: Any) -> dict[str, tuple[str, ...]]:
    if not request.HasField("hooks"):
        return {}
    return {event: tuple(names) for event in _HOOK_EVENTS if (names := getattr(request.hooks, event))}


def _inputs(value: Any, path: str, secret_paths: list[str]) -> Any:
    """Wire inputs as plain values, each secret masked where it sits.

    The SDK's deserializer lifts a nested secret to its top-level property (a secret customData hid the
    whole osProfile); the engine keeps it where it is, so the plan masks only the secret leaf.
    """
    if isinstance(value, struct_pb2.Struct):
        signature = value[rpc._special_sig_key] if rpc._special_sig_key in value else None
        if signature == rpc._special_secret_sig:
            secret_paths.append(path or ".")
            return SECRET_MASK
        if signature is not None:  # an asset, archive, resource reference or output value
            return _mask(rpc.deserialize_property(value, keep_unknowns=True), path, secret_paths)
        return {
            key: _inputs(item, f"{path}.{key}" if path else key, secret_paths)
            for key, item in value.items()
            if item is not None
        }
    if isinstance(value, struct_pb2.ListValue):
        return [_inputs(item, f"{path}[{index}]", secret_paths) for index, item in enumerate(value)]
    return _mask(rpc.deserialize_property(value, keep_unknowns=True), path, secret_paths)


def _mask(value: Any, path: str, secret_paths: list[str]) -> Any:
    """Replace secret values by SECRET_MASK, remembering where they were."""
    if isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig:
        secret_paths.append(path or ".")
        return SECRET_MASK
    if isinstance(value, dict):
        return {
            key: _mask(item, f"{path}.{key}" if path else key, secret_paths) for key, item in value.items()
        }
    if isinstance(value, list):
        return [_mask(item, f"{path}[{index}]", secret_paths) for index, item in enumerate(value)]
    if value is rpc.UNKNOWN or isinstance(value, pulumi.output.Unknown):
        return "[unknown]"
    if isinstance(value, (pulumi.Asset, pulumi.Archive)):
        return f"[{type(value).__name__}]"
    return value


def run_program(
    program: Callable[[], Mapping[str, Any] | None],
    *,
    project: str = "aml-platform",
    stack: str = "dev",
    config: Mapping[str, str] | None = None,
    secret_keys: Iterable[str] = (),
    preview: bool = False,
    into: Recording | None = None,
) -> Recording:
    """Run `program` under fresh mocks (no CLI, no cloud) and return what it registered and exported.

    Pass `into` to keep what was registered even when the program raises.
    """
    recording = into if into is not None else Recording(project=project, stack=stack)
    mocks = RecordingMocks()
    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_all_config(dict(config or {}), list(secret_keys))
    pulumi.runtime.set_mocks(
        mocks, project=project, stack=stack, preview=preview, monitor=RecordingMonitor(mocks, recording)
    )

    @pulumi.runtime.test
    def run() -> Any:
        outputs = program() or {}
        return pulumi.Output.from_input(asyncio.ensure_future(_resolve_outputs(outputs, recording.outputs)))

    try:
        run()
    finally:
        pulumi_settings.ROOT.set(None)
        pulumi.runtime.set_all_config({}, [])
    return recording


async def _resolve_outputs(outputs: Mapping[str, Any], resolved: dict[str, Any]) -> None:
    for key, value in outputs.items():
        output = pulumi.Output.from_input(value)
        plain = await output.future(with_unknowns=True)
        secret = await output.is_secret()
        resolved[key] = SECRET_MASK if secret else _mask(plain, key, [])
