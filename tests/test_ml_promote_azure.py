"""Promotion on Azure: the real MLClient for two workspaces and the registry, its HTTP intercepted by `responses`.

ARM (workspaces) is tests.test_ml_azure_contract's FakeArm; the registry answers at the endpoint its
discovery names (`.../mferp/managementfrontend/...`, api-version 2021-10-01-dataplanepreview, as
azure-ai-ml's _registry_utils sends); blobs live in an in-memory blob service behind SAS URIs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse
from xml.sax.saxutils import escape

import pytest
import responses

from mlops.backends.azure.promotion import AzureModels, registry_models, workspace_models
from mlops.backends.azure.session import Session
from mlops.promote import PromotionConflict, PromotionRefused, promote
from mlops.stack_outputs import StackOutputs
from tests._fake_arm import BLOB_DATASTORE, DISCOVERY, SUBSCRIPTION, FakeArm, StaticCredential

NAME = "taxi-fare-model"
REGISTRY = "mlr-mlops-001"
MFE = "https://westeurope.api.azureml.ms/"
MFE_PREFIX = "/mferp/managementfrontend"
REGISTRY_RG = "rg-mlops-001prod"
REGISTRY_STORAGE = "https://stregistry.blob.core.windows.net"
DEV = StackOutputs(SUBSCRIPTION, "rg-mlops-dev", "mlw-mlops-dev", "westeurope", "cpu-cluster", "dev")
PROD = StackOutputs(
    SUBSCRIPTION,
    "rg-mlops-prod",
    "mlw-mlops-prod",
    "westeurope",
    "cpu-cluster",
    "prod",
    model_registry_name=REGISTRY,
)
RECORD = {"test_rmse": "2.9", "test_r2": "0.93", "test_mae": "1.8", "deploy_reason": "better: 2.9 vs 3.1"}
MLMODEL = (
    b"flavors:\n  python_function: {}\nmetadata:\n  lineage:\n    data_sha256: d0d0\n    code_sha256: c0c0\n"
)
PICKLE = b"\x80\x05 model bytes"
CHAMPION = {"champion": "true"}
"""How register.py marks the champion on Azure ML (a version tag: AZURE-FACTS 16)."""


def workspace_path(outputs: StackOutputs) -> str:
    return (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{outputs.resource_group}"
        f"/providers/Microsoft.MachineLearningServices/workspaces/{outputs.workspace_name}"
    )


@dataclass
class Blobs:
    """Azure Blob storage in memory: put, head, ranged get and list (with or without a delimiter)."""

    files: dict[str, bytes] = field(default_factory=dict)
    """'<host>/<container>/<blob>' -> bytes."""
    puts: list[str] = field(default_factory=list)

    def handle(self, request: Any) -> tuple[int, dict[str, str], Any]:
        url = urlparse(request.url)
        query = parse_qs(url.query)
        key = f"{url.netloc}{unquote(url.path)}"
        stamp = {"ETag": '"0x1"', "Last-Modified": formatdate(usegmt=True)}
        if request.method == "PUT":
            if "comp" not in query:
                body = request.body if isinstance(request.body, bytes) else (request.body or b"")
                self.files[key] = body if isinstance(body, bytes) else body.read()
                self.puts.append(key)
                return 201, stamp, ""
            return 200, stamp, ""
        if query.get("comp") == ["list"]:
            return (
                200,
                {"Content-Type": "application/xml"},
                self._listing(url.netloc, unquote(url.path), query),
            )
        if key not in self.files:
            return 404, {"x-ms-error-code": "BlobNotFound"}, ""
        data = self.files[key]
        headers = stamp | {"Content-Length": str(len(data)), "x-ms-blob-type": "BlockBlob"}
        if request.method == "HEAD":
            return 200, headers, ""
        if request.headers.get("x-ms-range"):
            return 206, headers | {"Content-Range": f"bytes 0-{len(data) - 1}/{len(data)}"}, data
        return 200, headers, data

    def _listing(self, host: str, container_path: str, query: dict[str, list[str]]) -> str:
        container = container_path.strip("/").split("/")[0]
        prefix, delimiter = query.get("prefix", [""])[0], query.get("delimiter", [""])[0]
        root = f"{host}/{container}/"
        names = sorted(key[len(root) :] for key in self.files if key.startswith(root + prefix))
        blobs, prefixes = [], set()
        for name in names:
            rest = name[len(prefix) :]
            if delimiter and delimiter in rest:
                prefixes.add(prefix + rest.split(delimiter)[0] + delimiter)
                continue
            size = len(self.files[root + name])
            blobs.append(
                f"<Blob><Name>{escape(name)}</Name><Properties><Content-Length>{size}</Content-Length>"
                "<BlobType>BlockBlob</BlobType><Etag>0x1</Etag>"
                f"<Last-Modified>{formatdate(usegmt=True)}</Last-Modified></Properties></Blob>"
            )
        folders = "".join(f"<BlobPrefix><Name>{escape(p)}</Name></BlobPrefix>" for p in sorted(prefixes))
        return (
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<EnumerationResults ServiceEndpoint="https://{host}/" ContainerName="{container}">'
            f"<Prefix>{escape(prefix)}</Prefix><Blobs>{''.join(blobs)}{folders}</Blobs><NextMarker /></EnumerationResults>"
        )


class Arm(FakeArm):
    """FakeArm with a second workspace (prod) and model versions that read back as Azure ML returns them."""

    def _put(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, str], str]:
        if "/models/" in path:
            body.setdefault("properties", {}).setdefault("flavors", {})
        return super()._put(path, body)


@dataclass
class Registry:
    """The registry's data plane (discovery + MFE): model versions, upload and download references."""

    blobs: Blobs
    store: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)

    @property
    def base(self) -> str:
        return (
            f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{REGISTRY_RG}"
            f"/providers/Microsoft.MachineLearningServices/registries/{REGISTRY}"
        )

    def discovery(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.calls.append(("DISCOVERY", request.url))
        return (
            200,
            {},
            json.dumps(
                {
                    "registryName": REGISTRY,
                    "primaryRegion": "westeurope",
                    "regions": ["westeurope"],
                    "subscriptionId": SUBSCRIPTION,
                    "resourceGroup": REGISTRY_RG,
                    "primaryRegionResourceProviderUri": MFE,
                    "registryFqdns": {"westeurope": {}},
                }
            ),
        )

    def handle(self, request: Any) -> tuple[int, dict[str, str], str]:
        path = urlparse(request.url).path.removeprefix(MFE_PREFIX)
        self.calls.append((request.method, path))
        if self.failures:
            return (
                self.failures.pop(0),
                {},
                json.dumps({"error": {"code": "ServiceUnavailable", "message": "busy"}}),
            )
        relative = path.removeprefix(self.base)
        if request.method == "PUT" and relative.startswith("/tempdatarefs/"):
            name, version = relative.split("/")[2], relative.split("/")[4]
            # A container per asset version, as a SAS for the uploader (what azure-ai-ml expects back).
            folder = f"{REGISTRY_STORAGE}/{name}-{version}"
            return (
                200,
                {},
                json.dumps(
                    {
                        "blobReferenceForConsumption": {
                            "blobUri": folder,
                            "credential": {"credentialType": "SAS", "sasUri": f"{folder}?sv=2023&sig=upload"},
                        }
                    }
                ),
            )
        if request.method == "POST" and relative.startswith("/datarefs/"):
            uri = json.loads(request.body)["blobUri"]
            container = "/".join(uri.split("/")[:4])
            return (
                200,
                {},
                json.dumps(
                    {
                        "blobReferenceForConsumption": {
                            "blobUri": uri,
                            "credential": {
                                "credentialType": "SAS",
                                "sasUri": f"{container}?sv=2023&sig=download",
                            },
                        }
                    }
                ),
            )
        if request.method == "PUT" and "/models/" in relative:
            body = json.loads(request.body)
            # Registry assets come back with registry asset ids (azure-ai-ml's REGISTRY_VERSION_PATTERN).
            name, version = relative.split("/")[2], relative.split("/")[4]
            body.update(
                {"id": f"azureml://registries/{REGISTRY}/models/{name}/versions/{version}", "name": version}
            )
            body["properties"].setdefault("flavors", {})
            self.store[path] = body
            return 200, {}, json.dumps(body)
        if request.method == "GET" and path in self.store:
            return 200, {}, json.dumps(self.store[path])
        if request.method == "GET" and path.endswith("/versions"):
            return (
                200,
                {},
                json.dumps({"value": [v for k, v in self.store.items() if k.rsplit("/", 1)[0] == path]}),
            )
        return 404, {}, json.dumps({"error": {"code": "NotFound", "message": f"{path} not found"}})

    def models_put(self) -> list[str]:
        return [path for method, path in self.calls if method == "PUT" and "/models/" in path]


@dataclass
class Cloud:
    arm: Arm
    registry: Registry
    blobs: Blobs

    def prod_model_puts(self) -> list[str]:
        prod = workspace_path(PROD)
        return [
            path for method, path in self.arm.calls if method == "PUT" and path.startswith(prod + "/models/")
        ]


def seed_dev_model(cloud: Cloud, version: str, tags: dict[str, str], job: str) -> None:
    folder = f"azureml/{job}/model"
    for name, data in (("MLmodel", MLMODEL), ("model.pkl", PICKLE)):
        cloud.blobs.files[f"stmlopsdev.blob.core.windows.net/azureml-blobstore-x/{folder}/{name}"] = data
    uri = (
        f"azureml://subscriptions/{SUBSCRIPTION}/resourcegroups/{DEV.resource_group}/workspaces/"
        f"{DEV.workspace_name}/datastores/workspaceblobstore/paths/{folder}/"
    )
    cloud.arm.put(
        f"/models/{NAME}/versions/{version}",
        {"properties": {"modelType": "mlflow_model", "modelUri": uri, "tags": tags, "jobName": job}},
    )


@pytest.fixture
def cloud(monkeypatch: Any) -> Iterator[Cloud]:
    blobs = Blobs()
    arm = Arm()
    registry = Registry(blobs)
    arm.blob = blobs.handle  # type: ignore[method-assign]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        arm.install(mock)
        mock.add_callback(
            "GET",
            re.compile(r"https://eastus\.api\.azureml\.ms/registrymanagement/.*"),
            callback=registry.discovery,
        )
        for method in ("GET", "PUT", "POST"):
            mock.add_callback(method, re.compile(re.escape(MFE) + r"mferp/.*"), callback=registry.handle)
            mock.add_callback(method, re.compile(re.escape(REGISTRY_STORAGE) + r"/.*"), callback=blobs.handle)
        mock.add_callback("HEAD", re.compile(re.escape(REGISTRY_STORAGE) + r"/.*"), callback=blobs.handle)
        prod = workspace_path(PROD)
        arm._put(prod, {"location": "westeurope", "properties": {"discoveryUrl": DISCOVERY}})
        arm._put(f"{prod}/datastores/workspaceblobstore", {"properties": BLOB_DATASTORE})
        cloud = Cloud(arm, registry, blobs)
        seed_dev_model(cloud, "1", {"test_rmse": "2.5"}, "job-one")
        seed_dev_model(cloud, "2", RECORD, "job-two")
        seed_dev_model(cloud, "3", RECORD | CHAMPION, "job-three")
        yield cloud


def stores() -> tuple[AzureModels, AzureModels, AzureModels]:
    credential = StaticCredential()
    dev, prod = Session(DEV, credential=credential), Session(PROD, credential=credential)
    return workspace_models(dev), registry_models(prod, REGISTRY), workspace_models(prod)


def test_the_champion_is_copied_into_the_registry_and_prod_with_its_lineage_as_tags(cloud: Cloud) -> None:
    dev, registry, prod = stores()
    result = promote(dev, registry, prod, NAME, "3")
    assert [c.action for c in result.copies] == ["created", "created"]
    [put] = cloud.registry.models_put()
    assert put.endswith(f"/registries/{REGISTRY}/models/{NAME}/versions/3")
    body = cloud.registry.store[f"{cloud.registry.base}/models/{NAME}/versions/3"]["properties"]
    expected = {
        "promoted_from": f"azureml://subscriptions/{SUBSCRIPTION}/resourceGroups/rg-mlops-dev/workspaces/mlw-mlops-dev",
        "source_model": f"{NAME}:3",
        "source_run": "job-three",
        "data_sha256": "d0d0",
        "code_sha256": "c0c0",
        **RECORD,
        "promotion": "champion",
    }
    assert body["tags"] == expected and body["modelType"] == "mlflow_model"
    uploaded = {key.rsplit("/", 1)[1]: data for key, data in cloud.blobs.files.items() if "stregistry" in key}
    assert uploaded == {"MLmodel": MLMODEL, "model.pkl": PICKLE}
    [prod_put] = cloud.prod_model_puts()
    prod_body = cloud.arm.store[prod_put]["properties"]
    assert prod_body["tags"] == expected | {
        "registry_asset": f"azureml://registries/{REGISTRY}/models/{NAME}/versions/3"
    }
    assert prod_put.endswith(f"/workspaces/mlw-mlops-prod/models/{NAME}/versions/3")


def test_promoting_again_only_reads(cloud: Cloud) -> None:
    dev, registry, prod = stores()
    promote(dev, registry, prod, NAME, "3")
    mutations = (len(cloud.registry.models_put()), len(cloud.prod_model_puts()), len(cloud.blobs.puts))
    again = promote(dev, registry, prod, NAME, "3")
    assert [c.action for c in again.copies] == ["unchanged", "unchanged"]
    assert (
        len(cloud.registry.models_put()),
        len(cloud.prod_model_puts()),
        len(cloud.blobs.puts),
    ) == mutations


def test_a_non_champion_is_refused_before_any_write_and_forcing_it_is_recorded(cloud: Cloud) -> None:
    dev, registry, prod = stores()
    with pytest.raises(PromotionRefused, match=r"version 2 is not the champion .*\(version 3 is\)"):
        promote(dev, registry, prod, NAME, "2")
    assert cloud.registry.models_put() == [] and cloud.prod_model_puts() == []
    promote(dev, registry, prod, NAME, "2", force=True)
    stored = cloud.registry.store[f"{cloud.registry.base}/models/{NAME}/versions/2"]
    assert stored["properties"]["tags"]["promotion"] == "forced"


def test_a_version_without_its_evaluation_record_is_refused(cloud: Cloud) -> None:
    dev, registry, prod = stores()
    with pytest.raises(PromotionRefused, match=r"version 1 has no evaluation record"):
        promote(dev, registry, prod, NAME, "1", force=True)
    assert cloud.registry.models_put() == [] and cloud.blobs.puts == []


def test_a_registry_version_from_elsewhere_is_a_conflict(cloud: Cloud) -> None:
    path = f"{cloud.registry.base}/models/{NAME}/versions/3"
    cloud.registry.store[path] = {
        "id": f"azureml://registries/{REGISTRY}/models/{NAME}/versions/3",
        "name": "3",
        "properties": {
            "modelType": "mlflow_model",
            "flavors": {},
            "tags": {"promoted_from": "azureml://other"},
        },
    }
    dev, registry, prod = stores()
    with pytest.raises(PromotionConflict, match="promoted_from=azureml://other"):
        promote(dev, registry, prod, NAME, "3")
    assert cloud.registry.models_put() == [] and cloud.prod_model_puts() == []


def test_a_busy_registry_is_retried(cloud: Cloud) -> None:
    dev, registry, prod = stores()
    cloud.registry.failures.extend([503, 503])
    result = promote(dev, registry, prod, NAME, "3")
    assert [c.action for c in result.copies] == ["created", "created"]
    assert sum(1 for method, path in cloud.registry.calls if path.endswith("/versions/3")) >= 3


def test_the_champion_is_the_version_tagged_champion_not_the_newest(cloud: Cloud) -> None:
    dev, _, _ = stores()
    assert dev.champion(NAME) == "3"
    seed_dev_model(cloud, "4", RECORD, "job-four")  # registered, but the gate did not make it champion
    assert dev.champion(NAME) == "3"
    with pytest.raises(PromotionRefused, match=r"version 4 is not the champion .*\(version 3 is\)"):
        promote(*stores(), NAME, "4")


def _outputs_file(tmp_path: Path, outputs: StackOutputs, registry: bool) -> Path:
    raw = {
        "subscriptionId": outputs.subscription_id,
        "resourceGroupName": outputs.resource_group,
        "workspaceName": outputs.workspace_name,
        "location": outputs.location,
        "computeClusterName": outputs.compute_cluster_name,
        "environment": outputs.environment,
    } | ({"modelRegistryName": REGISTRY} if registry else {})
    path = tmp_path / f"{outputs.environment}.json"
    path.write_text(json.dumps(raw))
    return path


def test_the_cli_promotes_between_the_stacks_its_outputs_name(
    cloud: Cloud, tmp_path: Path, monkeypatch: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import azure.identity

    from mlops.cli import main

    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", StaticCredential)
    dev, prod = _outputs_file(tmp_path, DEV, registry=True), _outputs_file(tmp_path, PROD, registry=True)
    argv = ["promote", "--target", "azure", "--from-outputs", str(dev), "--to-outputs", str(prod)]
    version_file = tmp_path / "version"
    assert main([*argv, "--model-version", "champion", "--version-file", str(version_file)]) == 0
    assert version_file.read_text() == "3\n" and "(changed)" in capsys.readouterr().out
    assert len(cloud.registry.models_put()) == 1 and len(cloud.prod_model_puts()) == 1
    assert main([*argv, "--model-version", "2"]) == 2
    assert "is not the champion" in capsys.readouterr().err


def test_the_cli_needs_a_registry_name_from_the_stacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlops.cli import main

    dev, prod = _outputs_file(tmp_path, DEV, registry=False), _outputs_file(tmp_path, PROD, registry=False)
    argv = ["promote", "--target", "azure", "--from-outputs", str(dev), "--to-outputs", str(prod)]
    assert main([*argv, "--model-version", "3"]) == 2
    assert "neither stack exports modelRegistryName" in capsys.readouterr().err


def test_the_cli_refuses_a_github_hosted_runner_for_a_private_workspace_but_not_for_an_aks_one(
    cloud: Cloud, tmp_path: Path, monkeypatch: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import azure.identity

    from mlops.cli import main

    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", StaticCredential)
    monkeypatch.setenv("RUNNER_ENVIRONMENT", "github-hosted")
    dev, prod = _outputs_file(tmp_path, DEV, registry=True), _outputs_file(tmp_path, PROD, registry=True)
    # dev serves from AKS behind the internal load balancer: the hook's smoke test needs the VNet, promotion not.
    dev.write_text(json.dumps(json.loads(dev.read_text()) | {"onlineTarget": "kubernetes"}))
    private = json.loads(prod.read_text()) | {"workspacePublicNetworkAccess": "Disabled"}
    argv = ["promote", "--target", "azure", "--from-outputs", str(dev), "--model-version", "3"]
    private_prod = tmp_path / "private-prod.json"
    private_prod.write_text(json.dumps(private))
    assert main([*argv, "--to-outputs", str(private_prod)]) == 2
    assert "mlw-mlops-prod has public network access Disabled" in capsys.readouterr().err
    assert cloud.registry.calls == [] and cloud.prod_model_puts() == []
    assert main([*argv, "--to-outputs", str(prod)]) == 0
    assert len(cloud.prod_model_puts()) == 1
