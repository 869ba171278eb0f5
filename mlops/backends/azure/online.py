"""Online endpoints for the Azure backend: the blue/green primitives, written once for every online target.

What differs between a managed online endpoint and a Kubernetes one (the specs, sizing checks, the scoring
URI) sits behind `OnlineTarget`; see online_managed.py and online_kubernetes.py.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from mlops.backends.azure.assets import Assets
from mlops.backends.azure.session import ENDPOINT_DEADLINE_S, Session, plain, redact
from mlops.backends.base import BackendError, DeploymentSpec, EndpointState, SmokeResult
from mlops.model_monitor import (
    MonitorSettings,
    add_data_collection,
    endpoint_resource_id,
    ensure_monitor,
    send_endpoint_logs,
)
from mlops.retry import TRANSIENT_STATUSES, DeadlineExceeded, describe
from mlops.serving import sample_row_count, verdict

SMOKE_RANGE = (0.0, 500.0)
"""Plausible taxi fares in dollars: a smoke-tested deployment must predict within this range (as locally)."""


class OnlineTarget(Protocol):
    """Where online deployments run: the part of the blue/green steps that depends on the compute."""

    kind: str
    """"managed" or "kubernetes" (the stack output onlineTarget)."""

    def endpoint_entity(self, name: str) -> Any:
        """The endpoint to create, loaded from this target's spec."""
        ...

    def deployment_entity(self, spec: DeploymentSpec, environment: str) -> Any:
        """The deployment to create, loaded from this target's spec, for `spec`'s model version."""
        ...

    def describe(self, spec: DeploymentSpec) -> str:
        """Where the deployment runs, for plan and progress lines (SKU, or compute and instance type)."""
        ...

    def prepare(self, spec: DeploymentSpec) -> None:
        """Checks and set-up before a deployment is created (quota, resource fit, instance types)."""
        ...

    def planned_uri(self, name: str) -> str:
        """The scoring URI a new endpoint will have (what a dry run reports)."""
        ...

    def scoring_uri(self, name: str, reported: str) -> str:
        """The URI to smoke-test through, given the one Azure reports for the endpoint."""
        ...


class OnlineEndpoints:
    """Endpoint, deployment, health wait, smoke test, traffic and delete on one online target."""

    def __init__(self, session: Session, assets: Assets, target: OnlineTarget, http_post: Any = None) -> None:
        self.session = session
        self.assets = assets
        self.target = target
        self._http_post = http_post

    def _state(self, endpoint: Any) -> EndpointState:
        s = self.session
        names = s.call(
            f"deployments of {endpoint.name}",
            lambda: [d.name for d in s.client.online_deployments.list(endpoint_name=endpoint.name)],
        )
        return EndpointState(
            name=endpoint.name,
            scoring_uri=self.target.scoring_uri(endpoint.name, endpoint.scoring_uri or ""),
            traffic=dict(endpoint.traffic or {}),
            deployments=sorted(names),
        )

    def get(self, name: str) -> EndpointState | None:
        s = self.session
        endpoint = s.exists(f"online endpoint {name}", lambda: s.client.online_endpoints.get(name))
        return None if endpoint is None else self._state(endpoint)

    def ensure(self, name: str) -> EndpointState:
        s = self.session
        state = self.get(name)
        if state is not None:
            if s.dry_run:
                s.add_plan("endpoint", f"online {name}", f"exists (traffic {dict(state.traffic) or 'none'})")
            return state
        if s.dry_run:
            s.add_plan("endpoint", f"online {name}", f"would create ({self.target.kind}, key auth)")
            return EndpointState(
                name=name, scoring_uri=self.target.planned_uri(name), traffic={}, deployments=()
            )
        endpoint = self.target.endpoint_entity(name)
        endpoint.tags = {**(endpoint.tags or {}), "environment": s.outputs.environment}
        s.finish(
            f"create online endpoint {name}",
            lambda: s.client.online_endpoints.begin_create_or_update(endpoint),
            ENDPOINT_DEADLINE_S,
        )
        state = self.get(name)
        if state is None:
            raise BackendError(f"online endpoint {name} was created but cannot be read back; re-run the hook")
        return state

    def create_deployment(self, spec: DeploymentSpec, environment_spec: Path, deadline_s: float) -> None:
        s = self.session
        target = f"deployment {spec.name} on {spec.endpoint}"
        model = spec.model_reference
        current = s.exists(target, lambda: s.client.online_deployments.get(spec.name, spec.endpoint))
        if (
            current is not None
            and plain(current.provisioning_state) == "Succeeded"
            and same_model(current.model, spec)
        ):
            if s.dry_run:
                s.add_plan("deployment", f"{spec.endpoint}/{spec.name}", f"exists ({model})")
            return
        self.target.prepare(spec)
        environment = self.assets.environment_id(environment_spec)
        if s.dry_run:
            s.add_plan(
                "deployment",
                f"{spec.endpoint}/{spec.name}",
                f"would create {model}, {self.target.describe(spec)}",
            )
            return
        deployment = self.target.deployment_entity(spec, environment)
        add_data_collection(deployment)
        started = s.clock()
        s.finish(target, lambda: s.client.online_deployments.begin_create_or_update(deployment), deadline_s)
        remaining = max(0.0, deadline_s - (s.clock() - started))
        self._wait_healthy(spec, remaining)

    def _wait_healthy(self, spec: DeploymentSpec, deadline_s: float) -> None:
        s = self.session

        def poll() -> Any:
            current = s.call(
                f"deployment {spec.name}",
                lambda: s.client.online_deployments.get(spec.name, spec.endpoint),
            )
            if plain(current.provisioning_state) in ("Failed", "Canceled"):
                raise BackendError(
                    f"deployment {spec.name} on {spec.endpoint} ended {plain(current.provisioning_state)}; "
                    f"read its logs with `az ml online-deployment get-logs -n {spec.name} -e {spec.endpoint}`"
                )
            return current

        try:
            s.wait(
                poll,
                lambda d: plain(d.provisioning_state) == "Succeeded",
                deadline_s,
                f"deployment {spec.name}",
            )
        except DeadlineExceeded as late:
            raise BackendError(f"{late}; re-run the hook to resume") from None

    def smoke_test(self, endpoint: str, deployment: str, request_sample: Path) -> SmokeResult:
        s = self.session
        try:
            rows = sample_row_count(json.loads(request_sample.read_text(encoding="utf-8")))
        except ValueError as problem:
            raise BackendError(f"{request_sample}: {problem}") from None
        if s.dry_run:
            known = self.get(endpoint)
            uri = known.scoring_uri if known is not None else self.target.planned_uri(endpoint)
            s.add_plan(
                "smoke",
                f"{endpoint}/{deployment}",
                f"would POST {rows} rows to {uri} (key, deployment header)",
            )
            return SmokeResult(ok=True, status=None, detail="dry run: not sent")
        state = s.call(f"online endpoint {endpoint}", lambda: s.client.online_endpoints.get(endpoint))
        keys = s.call(f"keys of {endpoint}", lambda: s.client.online_endpoints.get_keys(endpoint))
        key = keys.primary_key
        s.secrets.append(key)
        headers = {
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            # Routes to this deployment whatever the traffic map says, so it is tested before it serves.
            "azureml-model-deployment": deployment,
        }
        body = request_sample.read_bytes()
        uri = self.target.scoring_uri(endpoint, state.scoring_uri or "")
        try:
            response = s.call(
                f"score {endpoint}/{deployment}",
                lambda: _raise_for_transient(self._post(uri, data=body, headers=headers, timeout=60)),
            )
        except BackendError as error:
            return SmokeResult(ok=False, status=None, detail=str(error))
        result = verdict(response.status_code, response.text.encode(), rows, SMOKE_RANGE)
        return replace(result, detail=redact(result.detail, s.secrets))

    def _post(self, url: str, **kwargs: Any) -> Any:
        if self._http_post is not None:
            return self._http_post(url, **kwargs)
        import requests

        return requests.post(url, **kwargs)

    def set_traffic(self, endpoint: str, traffic: Mapping[str, int]) -> EndpointState:
        s = self.session
        if s.dry_run:
            # A first deploy plans an endpoint that does not exist yet: plan against what would be there.
            s.add_plan("traffic", f"online {endpoint}", f"would set {dict(traffic)}")
            state = self.get(endpoint) or EndpointState(endpoint, self.target.planned_uri(endpoint), {}, ())
            return EndpointState(state.name, state.scoring_uri, dict(traffic), state.deployments)
        current = s.call(f"online endpoint {endpoint}", lambda: s.client.online_endpoints.get(endpoint))
        current.traffic = dict(traffic)
        s.finish(
            f"traffic of {endpoint}",
            lambda: s.client.online_endpoints.begin_create_or_update(current),
            ENDPOINT_DEADLINE_S,
        )
        state = self.get(endpoint)
        if state is None:
            raise BackendError(f"online endpoint {endpoint} disappeared while shifting traffic")
        self._monitor(endpoint, state)
        return state

    def _monitor(self, endpoint: str, state: EndpointState) -> None:
        """Endpoint logs to Log Analytics and the model monitor on the serving deployment.

        Best effort: the deployment already serves, so a monitoring failure is reported, not raised.
        """
        s = self.session
        serving = max(state.traffic.items(), key=lambda item: item[1], default=(None, 0))
        if serving[0] is None or serving[1] == 0:
            return
        outputs = s.outputs
        settings = MonitorSettings(
            drift_threshold=outputs.drift_threshold or 0.1, emails=outputs.alert_emails
        )
        try:
            if outputs.log_analytics_workspace_id:
                endpoint_id = endpoint_resource_id(
                    outputs.subscription_id, outputs.resource_group, outputs.workspace_name, endpoint
                )
                send_endpoint_logs(s.client._credential, endpoint_id, outputs.log_analytics_workspace_id)
            if self.assets.training_data is None:
                s.say(f"model monitor: no training data registered by this run; not changed on {endpoint}")
                return
            s.say(
                ensure_monitor(
                    s.client, endpoint=endpoint, deployment=serving[0], training_data=self.assets.training_data,
                    settings=settings,
                )
            )  # fmt: skip
        except Exception as error:  # noqa: BLE001 - see docstring
            s.say(f"model monitor on {endpoint}: not set up ({s.safe(describe(error))}); the endpoint serves")

    def delete_deployment(self, endpoint: str, deployment: str) -> None:
        s = self.session
        if s.dry_run:
            s.add_plan("cleanup", f"{endpoint}/{deployment}", "would delete")
            return
        target = f"deployment {deployment} on {endpoint}"
        if s.exists(target, lambda: s.client.online_deployments.get(deployment, endpoint)) is None:
            return  # already gone: a re-run after a crash during cleanup
        s.finish(
            f"delete {target}",
            lambda: s.client.online_deployments.begin_delete(name=deployment, endpoint_name=endpoint),
            ENDPOINT_DEADLINE_S,
        )


def same_model(model: Any, spec: DeploymentSpec) -> bool:
    """Whether a deployment's model reference (ARM id or azureml: URI) names spec's model version."""
    reference = str(getattr(model, "id", None) or model or "")
    from_registry = "/registries/" in reference
    return from_registry == bool(spec.model_registry) and reference.endswith(
        (f"{spec.model_name}:{spec.model_version}", f"models/{spec.model_name}/versions/{spec.model_version}")
    )


def _raise_for_transient(response: Any) -> Any:
    """Turn a retryable HTTP status into an exception our retry sees; other statuses are judged later."""
    if response.status_code in TRANSIENT_STATUSES:
        raise _HttpStatusError(response)
    return response


class _HttpStatusError(Exception):
    """A scoring response with a retryable status (carries it for mlops.retry)."""

    def __init__(self, response: Any) -> None:
        super().__init__(f"scoring returned HTTP {response.status_code}")
        self.response = response
        self.status_code = response.status_code
