"""The ML post-deploy hook as a Pulumi ResourceHook: deploy after the compute cluster is created/updated."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pulumi

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO / "mlops" / "data" / "taxi-data.csv"
HOOK_TIMEOUT_S = 6 * 3600.0
"""Training (4 h deadline) plus deployments and batch scoring; the CLI enforces tighter per-step deadlines."""

_AML_ID = re.compile(
    r"^/subscriptions/(?P<subscription>[^/]+)/resourceGroups/(?P<group>[^/]+)"
    r"/providers/Microsoft\.MachineLearningServices/workspaces/(?P<workspace>[^/]+)"
    r"(?:/computes/(?P<compute>[^/]+))?/?$",
    re.IGNORECASE,
)


class HookError(Exception):
    """The hook cannot build the deploy call from what the resource reported, or the deploy failed."""


def outputs_from_resource(resource_id: str, location: str | None, environment: str) -> dict[str, str]:
    """Stack outputs (the keys `mlops.stack_outputs` reads) from a workspace or compute ARM id."""
    match = _AML_ID.match(resource_id or "")
    if match is None:
        raise HookError(
            f"resource id {resource_id!r} is not an AML workspace or compute id; expected "
            "/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.MachineLearningServices/"
            "workspaces/<name>[/computes/<name>] (attach the hook to the compute cluster resource)"
        )
    if not location:
        raise HookError(
            f"resource {resource_id} reported no location; attach the hook to the compute cluster"
        )
    outputs = {
        "subscriptionId": match["subscription"],
        "resourceGroupName": match["group"],
        "workspaceName": match["workspace"],
        "location": location,
        "environment": environment,
    }
    if match["compute"]:
        outputs["computeClusterName"] = match["compute"]
    return outputs


def deploy_command(stack: str, outputs_file: Path, data: Path, python: str = sys.executable) -> list[str]:
    """The CLI call the hook makes; CI runs the same line after `pulumi up` (outputs from the stack)."""
    return [
        python,
        "-m",
        "mlops",
        "deploy",
        "--target",
        "azure",
        "--stack",
        stack,
        "--outputs",
        str(outputs_file),
        "--data",
        str(data),
    ]


def run_streaming(command: Sequence[str], log: Callable[[str], None], timeout_s: float) -> int:
    """Run the deploy, forwarding each output line to Pulumi's log as it comes (the run takes long).

    A watchdog kills the deploy at `timeout_s`: reading its output blocks until it exits, so a wait with a
    timeout after the read loop would never fire for a hung deploy.
    """
    with subprocess.Popen(
        list(command), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        watchdog = threading.Timer(timeout_s, process.kill)
        watchdog.start()
        try:
            assert process.stdout is not None
            for line in process.stdout:
                log(line.rstrip())
            code = process.wait()
        finally:
            watchdog.cancel()
        if watchdog.finished.is_set() and code < 0:
            raise HookError(f"the post-deploy hook ran over {timeout_s:.0f}s and was stopped")
        return code


def run_hook(
    stack: str,
    environment: str,
    resource_id: str,
    new_outputs: Mapping[str, Any],
    *,
    data: Path,
    log: Callable[[str], None],
    known_outputs: Mapping[str, str] | None = None,
    run: Callable[[Sequence[str], Callable[[str], None], float], int] = run_streaming,
) -> None:
    """Write the outputs the resource reported (plus `known_outputs`, e.g. endpoint names the stack
    derived) to a temporary file and run the deploy with them."""
    outputs = outputs_from_resource(resource_id, new_outputs.get("location"), environment)
    outputs.update(known_outputs or {})
    if "computeClusterName" not in outputs and new_outputs.get("name"):
        outputs["computeClusterName"] = str(new_outputs["name"])
    if not data.is_file():
        raise HookError(
            f"training data {data} is missing; create it with `python -m mlops.data generate --rows 20000 "
            f"--seed 42 --out {data}` before `pulumi up`, or turn the post-deploy switch off"
        )
    with tempfile.TemporaryDirectory(prefix="post-deploy-") as scratch:
        outputs_file = Path(scratch) / "stack-outputs.json"
        outputs_file.write_text(json.dumps(outputs, indent=2), encoding="utf-8")
        code = run(deploy_command(stack, outputs_file, data), log, HOOK_TIMEOUT_S)
    if code != 0:
        raise HookError(
            f"`python -m mlops deploy --target azure --stack {stack}` exited {code} (see the log above)"
        )


def hook_callback(
    stack: str,
    environment: str,
    *,
    enabled: bool,
    data: Path,
    known_outputs: Mapping[str, str] | None = None,
    is_dry_run: Callable[[], bool] = pulumi.runtime.is_dry_run,
    deploy: Callable[..., None] = run_hook,
) -> Callable[[pulumi.ResourceHookArgs], None]:
    """What the hook does with the resource the engine reports: nothing when off or in preview."""

    def callback(args: pulumi.ResourceHookArgs) -> None:
        if not enabled:
            pulumi.log.info("post-deploy hook is off for this stack (config postDeployHook); skipping")
            return
        if is_dry_run():
            return  # the engine skips hooks in preview already; this guards against on_dry_run=True
        outputs = dict(args.new_outputs or {})
        resource_id = args.id or str(outputs.get("id", ""))
        deploy(
            stack,
            environment,
            resource_id,
            outputs,
            data=data,
            log=pulumi.log.info,
            known_outputs=known_outputs,
        )

    return callback


def post_deploy_hook(
    stack: str,
    environment: str,
    *,
    enabled: bool = False,
    data: Path = DEFAULT_DATA,
    known_outputs: Mapping[str, str] | None = None,
) -> pulumi.ResourceHook:
    """The hook to bind as after_create/after_update of the compute cluster; a no-op unless `enabled`.

    `known_outputs`: stack outputs the resource cannot report, such as the endpoint names.
    """
    callback = hook_callback(stack, environment, enabled=enabled, data=data, known_outputs=known_outputs)
    return pulumi.ResourceHook(
        f"mlops-post-deploy-{stack}", callback, pulumi.ResourceHookOptions(on_dry_run=False)
    )
