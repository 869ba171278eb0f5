"""`python -m mlops`: deploy the ML lifecycle locally or on Azure ML, and check the AML specs."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any, Callable, Sequence

from mlops.backends.base import DataSpec, EnvironmentSpec
from mlops.orchestrate import (
    EXIT_CODES_HELP,
    EXIT_OK,
    EXIT_USAGE,
    HOOK_DEADLINE_S,
    DeployError,
    DeployRequest,
    DeploySummary,
    Progress,
    UsageError,
    deploy,
    exit_code,
    parse_traffic_steps,
)

ROOT = Path(__file__).resolve().parent.parent
MLOPS = ROOT / "mlops"
PIPELINE = MLOPS / "azureml" / "train" / "pipeline.yml"
CONDA_FILE = MLOPS / "azureml" / "train" / "conda.yml"
REQUEST_SAMPLE = MLOPS / "data" / "request-sample.json"
BATCH_SAMPLE = MLOPS / "data" / "batch-sample.csv"

# Names as the AML specs (mlops/azureml/train/pipeline.yml) refer to them.
ENVIRONMENT_NAME = "taxi-train-env"
ENVIRONMENT_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
DATA_NAME = "taxi-data"
COMPUTE_NAME = "cpu-cluster"
EXPERIMENT = "taxi-fare-training"
MODEL_NAME = "taxi-fare-model"
ONLINE_ENDPOINT = "taxi-fare-online"
BATCH_ENDPOINT = "taxi-fare-batch"

DEFAULT_WORKDIR = Path(".work/local")
LOCAL_REGISTRY = Path(".work/local-registry")
ENVIRONMENTS = ("dev", "prod")
DEFAULT_ROWS = 20_000
DATA_SEED = 42
EXIT_INTERRUPTED = 130
EXIT_DRIFT = 7
"""`monitor`: a drift threshold was crossed (the local alert)."""
EXIT_BUDGET_MISSED = 8
"""`loadtest`: the p99 or error budget was missed."""
MONITOR_EXIT_HELP = f"exit codes: 0 no threshold crossed, {EXIT_DRIFT} drift (the alert), 2 usage"
LOADTEST_EXIT_HELP = f"exit codes: 0 budgets met, {EXIT_BUDGET_MISSED} a budget missed, 2 usage"
LOCAL_ONLY = ("workdir", "rows", "serve")
AZURE_ONLY = ("stack", "outputs", "dry_run", "online_target", "registry")
ONLINE_TARGETS = ("kubernetes", "managed")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; `--help` on `deploy` lists the exit codes."""
    parser = argparse.ArgumentParser(prog="python -m mlops", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check-specs", help="validate the AML YAML specs under mlops/azureml offline")
    runner = commands.add_parser(
        "hook-runner",
        help="where CI must run the hook for a stack: print a GitHub runs-on value, or check a pool/label",
    )
    runner.add_argument("--outputs", type=Path, required=True, help="JSON file of stack outputs")
    runner.add_argument("--ci", choices=("github", "azure-devops", "jenkins"), required=True)
    runner.add_argument("--given", default="", help="the pool (Azure DevOps) or agent label (Jenkins) in use")
    run = commands.add_parser(
        "deploy",
        help="train, gate, deploy blue/green with a smoke test, shift traffic, score the batch sample",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--target", choices=("local", "azure"), required=True, help="where the lifecycle runs")
    run.add_argument("--data", type=Path, help="training CSV (default: generate a sample into the workdir)")
    run.add_argument(
        "--model-version",
        help="deploy this registered version (also one older than the champion); skips training and the gate",
    )
    run.add_argument(
        "--skip-training",
        action="store_true",
        help="deploy without training: the current champion, or the --model-version given",
    )
    run.add_argument(
        "--traffic-steps",
        type=_traffic_steps,
        default=(100,),
        metavar="P,...",
        help="traffic percentages for the new deployment, in order (default 100; e.g. 10,50,100)",
    )
    run.add_argument("--seed", type=int, default=42, help="training seed (default 42)")
    run.add_argument(
        "--deadline-minutes",
        type=_positive_minutes,
        default=HOOK_DEADLINE_S / 60,
        metavar="M",
        help=f"the whole run's deadline; every wait is capped by what is left (default {HOOK_DEADLINE_S / 60:.0f})",
    )
    run.add_argument(
        "--sweep",
        action="store_true",
        help="tune with the pipeline's hyperparameter sweep step instead of one train step",
    )
    local = run.add_argument_group("--target local")
    local.add_argument(
        "--workdir", type=Path, help=f"state, registry, models and logs (default {DEFAULT_WORKDIR})"
    )
    local.add_argument("--rows", type=int, help=f"rows of generated sample data (default {DEFAULT_ROWS:,})")
    local.add_argument("--serve", action="store_true", help="keep the endpoint up until Ctrl-C")
    azure = run.add_argument_group("--target azure")
    azure.add_argument("--stack", help="Pulumi stack whose outputs locate the workspace (dev or prod)")
    azure.add_argument("--outputs", type=Path, help="JSON file of stack outputs (instead of asking pulumi)")
    azure.add_argument("--dry-run", action="store_true", help="show what would be done, change nothing")
    azure.add_argument(
        "--online-target",
        choices=ONLINE_TARGETS,
        help="override the stack's online target (stack output onlineTarget); refused if the stack cannot host it",
    )
    azure.add_argument(
        "--registry",
        metavar="NAME",
        help="take --model-version from this Azure ML registry (managed target only: Kubernetes endpoints "
        "cannot serve registry models)",
    )
    _add_monitor(commands)
    _add_loadtest(commands)
    _add_report_parser(commands)
    _add_promote_parser(commands)
    return parser


def _add_monitor(commands: argparse._SubParsersAction) -> None:
    monitor = commands.add_parser(
        "monitor",
        help="compare collected (or batch-scored) traffic with the training data: drift report, alert",
        epilog=MONITOR_EXIT_HELP,
    )
    monitor.add_argument("--target", choices=("local",), required=True, help="where the traffic was served")
    monitor.add_argument(
        "--workdir", type=Path, help=f"the local deploy's workdir (default {DEFAULT_WORKDIR})"
    )
    monitor.add_argument(
        "--reference", type=Path, help="training CSV (default: the newest registered taxi-data)"
    )
    monitor.add_argument(
        "--production", type=Path, help="collection folder or scored CSV (default: the endpoint's collection)"
    )
    monitor.add_argument("--out", type=Path, help="report folder (default <workdir>/monitor)")
    monitor.add_argument(
        "--numerical-threshold", type=float, default=0.1, help="normalized Wasserstein (0.1)"
    )
    monitor.add_argument("--categorical-threshold", type=float, default=0.1, help="Jensen-Shannon (0.1)")


def _add_loadtest(commands: argparse._SubParsersAction) -> None:
    load = commands.add_parser(
        "loadtest", help="Locust load test of a scoring URI; fails on a missed p99/error budget",
        epilog=LOADTEST_EXIT_HELP,
    )  # fmt: skip
    where = load.add_mutually_exclusive_group(required=True)
    where.add_argument("--uri", help="scoring URI (plain http only to 127.0.0.1 unless --insecure)")
    where.add_argument(
        "--workdir", type=Path, help="serve the local endpoint of this deploy workdir and load it"
    )
    load.add_argument("--users", type=int, default=4, help="concurrent users (1-64, default 4)")
    load.add_argument("--seconds", type=float, default=10.0, help="duration (1-600 s, default 10)")
    load.add_argument("--max-requests", type=int, default=20_000, help="stop after this many (default 20000)")
    body = load.add_mutually_exclusive_group()
    body.add_argument("--data", type=Path, help="CSV whose feature rows become the requests")
    body.add_argument("--payload", type=Path, help=f"one JSON request body (default {REQUEST_SAMPLE.name})")
    load.add_argument("--rows-per-request", type=int, default=2, help="with --data (default 2)")
    load.add_argument("--key", help="endpoint key, sent as a bearer token (default: env SCORING_KEY)")
    load.add_argument("--deployment", help="route to this deployment (header azureml-model-deployment)")
    load.add_argument("--insecure", action="store_true", help="allow plain http to a non-loopback host")
    load.add_argument("--p99-ms", type=float, help="fail when Locust's p99 is over this many ms")
    load.add_argument("--max-errors", type=int, default=0, help="fail above this many failed requests (0)")
    load.add_argument(
        "--out", type=Path, help="CSV + HTML reports (default <workdir>/loadtest or .work/loadtest)"
    )
    load.add_argument(
        "--json", type=Path, help="also write the figures to this JSON file (for CI, benchmarks)"
    )


def _add_promote_parser(commands: argparse._SubParsersAction) -> None:
    promote = commands.add_parser(
        "promote",
        help="copy a registered version from dev into the shared registry and prod, with its lineage",
        epilog="exit codes: 0 done (also when already promoted), 2 refused or conflicting, 5 transient, "
        "6 other Azure error, 130 interrupted",
    )
    promote.add_argument("--target", choices=("local", "azure"), required=True, help="where the stores are")
    promote.add_argument("--from", dest="source", choices=ENVIRONMENTS, default="dev", help="default dev")
    promote.add_argument(
        "--to", dest="destination", choices=ENVIRONMENTS, default="prod", help="default prod"
    )
    promote.add_argument(
        "--model-version", required=True, help="the source version to promote, or `champion` (the source's)"
    )
    promote.add_argument("--version-file", type=Path, help="write the promoted version number here (for CI)")
    promote.add_argument("--model-name", default=MODEL_NAME, help=f"default {MODEL_NAME}")
    promote.add_argument(
        "--force", action="store_true", help="promote even if it is not the source's champion"
    )
    local = promote.add_argument_group("--target local")
    local.add_argument("--from-workdir", type=Path, help=f"source workdir (default {DEFAULT_WORKDIR})")
    local.add_argument("--to-workdir", type=Path, help="target workdir (default .work/local-<to>)")
    local.add_argument(
        "--registry-dir", type=Path, help=f"the local registry folder (default {LOCAL_REGISTRY})"
    )
    azure = promote.add_argument_group("--target azure")
    azure.add_argument("--from-outputs", type=Path, help="stack outputs JSON of the source (else `pulumi`)")
    azure.add_argument("--to-outputs", type=Path, help="stack outputs JSON of the target (else `pulumi`)")


def _add_report_parser(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser(
        "report", help="Markdown + PNG report of a local training run against the champion (for PRs)"
    )
    report.add_argument("--run", type=Path, required=True, help="a run folder, WORKDIR/runs/run-NNN")
    report.add_argument(
        "--against",
        choices=("champion", "none"),
        default="champion",
        help="compare with the champion the run's evaluate step scored (default), or show the candidate only",
    )
    report.add_argument(
        "--out", type=Path, required=True, help="folder for report.md, comment.md and the PNGs"
    )


def _positive_minutes(text: str) -> float:
    try:
        minutes = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--deadline-minutes {text!r}: give a number of minutes") from None
    if minutes <= 0:
        raise argparse.ArgumentTypeError(f"--deadline-minutes {text!r}: must be above zero")
    return minutes


def _traffic_steps(text: str) -> tuple[int, ...]:
    try:
        return parse_traffic_steps(text)
    except UsageError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, dispatch, and map failures to the documented exit codes."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "check-specs":
            return check_specs()
        if args.command == "monitor":
            return monitor_local(args)
        if args.command == "loadtest":
            return loadtest(args)
        if args.command == "hook-runner":
            return hook_runner(args)
        if args.command == "report":
            return write_report(args)
        if args.command == "promote":
            return promote_models(args)
        _reject_foreign_flags(args)
        return deploy_local(args) if args.target == "local" else deploy_azure(args)
    except KeyboardInterrupt:
        stopped = (
            "local servers this run started were stopped"
            if getattr(args, "target", None) == "local"
            else "Azure operations already submitted go on; re-run to attach to them"
        )
        print(f"interrupted; {stopped}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:
        code = exit_code(error)
        if code == 1:
            raise
        print(f"error: {error}", file=sys.stderr)
        return code


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _reject_foreign_flags(args: argparse.Namespace) -> None:
    foreign = AZURE_ONLY if args.target == "local" else LOCAL_ONLY
    given = [f"--{name.replace('_', '-')}" for name in foreign if getattr(args, name) not in (None, False)]
    if given:
        raise UsageError(
            f"{', '.join(given)}: only for --target {'azure' if args.target == 'local' else 'local'}"
        )
    if args.rows is not None and (args.rows < 100 or args.data is not None):
        raise UsageError(f"--rows {args.rows}: give at least 100 rows, and only without --data")


def check_specs() -> int:
    """Print every problem in the AML specs; exit 2 if there is any."""
    from mlops.pipeline_spec import check_all_specs

    problems = check_all_specs()
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"check-specs: {len(problems)} problem(s)")
    return EXIT_USAGE if problems else EXIT_OK


def promote_models(args: argparse.Namespace) -> int:
    """Promote one version from --from to --to through the registry; refusals exit 2 with the reason."""
    from mlops.promote import PromotionConflict, PromotionError, PromotionRefused, promote

    if args.source == args.destination:
        raise UsageError(
            f"--from and --to are both {args.source}; promotion goes from one environment to another"
        )
    progress = Progress()
    try:
        stores = _promotion_stores(args)
    except PromotionError as error:
        raise DeployError(str(error)) from None
    try:
        with progress.step("promote") as say:
            result = promote(*stores, args.model_name, args.model_version, force=args.force, say=say)
    except (PromotionRefused, PromotionConflict) as error:
        raise UsageError(str(error)) from None
    except PromotionError as error:
        raise DeployError(str(error)) from None
    finally:
        for store in stores:
            close = getattr(store, "close", None)
            if close is not None:
                close()
    print("\n".join(result.lines()), flush=True)
    if args.version_file is not None:
        args.version_file.parent.mkdir(parents=True, exist_ok=True)
        args.version_file.write_text(result.version + "\n")
    return EXIT_OK


def _promotion_stores(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """Source, registry and target stores: local workdirs and a folder, or the stacks' workspaces and registry."""
    local_flags = ("from_workdir", "to_workdir", "registry_dir")
    azure_flags = ("from_outputs", "to_outputs")
    foreign = azure_flags if args.target == "local" else local_flags
    given = [f"--{name.replace('_', '-')}" for name in foreign if getattr(args, name) is not None]
    if given:
        raise UsageError(f"{', '.join(given)}: not for --target {args.target}")
    if args.target == "local":
        from mlops.promote import LocalRegistry, LocalWorkdir

        source_dir = (args.from_workdir or DEFAULT_WORKDIR).resolve()
        if not (source_dir / "mlflow.db").is_file():
            raise UsageError(
                f"--from-workdir {source_dir}: no MLflow registry there; train with `deploy` first"
            )
        target_dir = (args.to_workdir or DEFAULT_WORKDIR.with_name(f"local-{args.destination}")).resolve()
        return (
            LocalWorkdir(source_dir),
            LocalRegistry((args.registry_dir or LOCAL_REGISTRY).resolve()),
            LocalWorkdir(target_dir),
        )
    return _azure_promotion_stores(args)


def _azure_promotion_stores(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """The two workspaces and the registry, each behind a Session of the Azure backend (one credential)."""
    from mlops.backends.azure.promotion import location_problem, registry_models, workspace_models
    from mlops.backends.azure.session import Session
    from mlops.stack_outputs import StackOutputsError, load_stack_outputs

    try:
        source = load_stack_outputs(args.source, args.from_outputs)
        target = load_stack_outputs(args.destination, args.to_outputs)
    except StackOutputsError as error:
        raise UsageError(str(error)) from None
    registry_name = target.model_registry_name or source.model_registry_name
    if not registry_name:
        raise UsageError(
            "neither stack exports modelRegistryName: set enableModelRegistry=true (the default) and run "
            f"`pulumi up --stack {args.destination}`, which creates the registry"
        )
    for outputs in (source, target):
        problem = location_problem(outputs, os.environ)
        if problem:
            raise UsageError(f"promote: {problem}")
    source_session = Session(source, progress=print)
    target_session = Session(target, credential=source_session.credential_object, progress=print)
    return (
        workspace_models(source_session),
        registry_models(target_session, registry_name),
        workspace_models(target_session),
    )


def write_report(args: argparse.Namespace) -> int:
    """Write the run's report; a folder that is not a training run is a usage error."""
    from mlops.report import ReportError
    from mlops.report import write_report as write

    progress = Progress()
    try:
        with progress.step("report") as say:
            report = write(args.run.resolve(), args.out.resolve(), against=args.against)
            say(f"{report.markdown} (+ {len(report.plots)} PNGs); PR comment body: {report.comment}")
    except ReportError as error:
        raise UsageError(str(error)) from None
    print(report.markdown)
    return EXIT_OK


def hook_runner(args: argparse.Namespace) -> int:
    """Print where the hook must run (GitHub), or exit 2 when the given pool/label cannot reach the workspace."""
    import json

    from mlops.backends.azure.placement import hook_runner as runner_for
    from mlops.backends.azure.placement import runner_problem
    from mlops.stack_outputs import StackOutputsError, load_stack_outputs

    try:
        outputs = load_stack_outputs(None, args.outputs)
    except StackOutputsError as error:
        raise UsageError(str(error)) from None
    if args.ci == "github":
        print(json.dumps(runner_for(outputs).github_runs_on))
        return EXIT_OK
    problem = runner_problem(outputs, args.ci, args.given)
    if problem:
        raise UsageError(problem)
    print(f"hook-runner: {args.given or 'this agent'} can reach workspace {outputs.workspace_name}")
    return EXIT_OK


def build_request(
    args: argparse.Namespace,
    data: Path | None,
    endpoints: tuple[str, str] = (ONLINE_ENDPOINT, BATCH_ENDPOINT),
) -> DeployRequest:
    """The deploy request for the repository's specs and samples; `endpoints` = (online, batch) names."""
    for required in (PIPELINE, CONDA_FILE, REQUEST_SAMPLE):
        if not required.is_file():
            raise UsageError(f"{required} is missing; it is part of the repository (restore it)")
    return DeployRequest(
        environment=EnvironmentSpec(ENVIRONMENT_NAME, ENVIRONMENT_IMAGE, CONDA_FILE),
        data=DataSpec(DATA_NAME, data, "NYC taxi trips with fares") if data else None,
        compute=COMPUTE_NAME,
        pipeline=PIPELINE,
        experiment=EXPERIMENT,
        model_name=MODEL_NAME,
        online_endpoint=endpoints[0],
        batch_endpoint=endpoints[1],
        request_sample=REQUEST_SAMPLE,
        batch_sample=BATCH_SAMPLE if BATCH_SAMPLE.is_file() else None,
        seed=args.seed,
        model_version=args.model_version,
        skip_training=args.skip_training,
        model_registry=getattr(args, "registry", None),
        traffic_steps=args.traffic_steps,
        sweep=args.sweep,
        deadline_s=args.deadline_minutes * 60,
    )


def deploy_local(args: argparse.Namespace) -> int:
    """Run the lifecycle on this machine; with --serve keep the endpoint up until Ctrl-C."""
    from mlops.backends.local import LocalBackend

    workdir = (args.workdir or DEFAULT_WORKDIR).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    progress = Progress()
    # The backend first: its warm interpreter (mlops.prefork) imports while the sample data is generated.
    backend = LocalBackend(workdir, log=progress.note, keep_endpoint_up=args.serve, warm_start=True)
    try:
        data = _training_data(args, workdir, progress)
        summary = deploy(backend, build_request(args, data), progress)
        _print_summary(summary)
        if args.serve and summary.scoring_uri:
            _serve_until_interrupted(summary.scoring_uri)
    finally:
        backend.close()
    return EXIT_OK


def _given_data(args: argparse.Namespace) -> Path | None:
    """The --data file, resolved; a missing file is a usage error before anything else runs."""
    if args.data is None:
        return None
    if not args.data.is_file():
        raise UsageError(f"--data {args.data}: no such file; give a taxi CSV (see mlops/src/taxi_schema.py)")
    return args.data.resolve()


def _training_data(args: argparse.Namespace, workdir: Path, progress: Progress) -> Path | None:
    if args.data is not None:
        return _given_data(args)
    if args.model_version or args.skip_training:
        return None
    rows = args.rows or DEFAULT_ROWS
    target = workdir / f"taxi-{rows}-seed{DATA_SEED}.csv"
    if target.is_file():
        progress.skip("generate", f"{target.name} exists")
        return target
    with progress.step("generate") as say:
        # Written aside and renamed, so an interrupted run never leaves a truncated CSV to be reused.
        partial = target.with_suffix(".partial")
        generate = ["-m", "mlops.data", "generate", "--rows", str(rows), "--seed", str(DATA_SEED)]
        done = subprocess.run(
            [sys.executable, *generate, "--out", str(partial)], cwd=ROOT, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise DeployError(
                f"generating sample data failed (exit {done.returncode}): {done.stderr[-2000:]}"
            )
        partial.replace(target)
        say(f"{rows:,} rows -> {target}")
    return target


def deploy_azure(args: argparse.Namespace) -> int:
    """Run the lifecycle on the Azure ML workspace that the Pulumi stack created."""
    from mlops.backends.azure import AzureBackend

    if args.data is None and not (args.model_version or args.skip_training):
        raise UsageError(
            "--target azure needs --data CSV for training (or --model-version N / --skip-training)"
        )
    progress = Progress()
    data = _given_data(args)
    backend = AzureBackend.from_cli(
        stack=args.stack,
        outputs=args.outputs,
        dry_run=args.dry_run,
        log=progress.note,
        online_target=args.online_target,
        deadline_s=args.deadline_minutes * 60,
    )
    try:
        request = build_request(args, data, backend.outputs.endpoint_names())
        _print_summary(deploy(backend, request, progress))
    finally:
        backend.close()
    return EXIT_OK


def monitor_local(args: argparse.Namespace) -> int:
    """Drift report of the local endpoint's collected traffic; exit EXIT_DRIFT when a threshold is crossed."""
    from mlops.backends.local import LocalBackend
    from mlops.drift import DriftError, Thresholds
    from mlops.monitor_report import FEW_ROWS, MonitorError, write_report

    workdir = (args.workdir or DEFAULT_WORKDIR).resolve()
    backend = LocalBackend(workdir)
    reference = args.reference or backend.latest_data_file(DATA_NAME)
    if reference is None:
        raise UsageError(
            f"{workdir} has no registered {DATA_NAME}; run a local deploy first or give --reference"
        )
    production = args.production or backend.collection_dir(ONLINE_ENDPOINT)
    out = (args.out or workdir / "monitor").resolve()
    try:
        thresholds = Thresholds(numerical=args.numerical_threshold, categorical=args.categorical_threshold)
        report = write_report(Path(reference), production, out, thresholds)
    except (DriftError, MonitorError) as problem:
        raise UsageError(str(problem)) from None
    crossed = report.drifted
    rows = report.production_rows
    if rows < FEW_ROWS:
        print(
            f"monitor: only {rows} production rows; below {FEW_ROWS} sampling noise alone can cross the thresholds"
        )
    verdict = f"ALERT: {', '.join(c.name for c in crossed)} drifted" if crossed else "no drift"
    print(f"monitor: {len(report.drift)} columns compared in {report.seconds:.1f} s: {verdict}")
    print(f"monitor: report {report.markdown} (figures and report.json beside it)", flush=True)
    return EXIT_DRIFT if crossed else EXIT_OK


def loadtest(args: argparse.Namespace) -> int:
    """Locust against --uri, or against the local endpoint of --workdir started for the run."""
    import locust  # noqa: F401 - gevent must patch the process before anything below imports ssl

    from mlops.loadtest import Budget, LoadTestError, check_bounds, check_uri, payloads_from_csv, run_load

    try:
        check_bounds(args.users, args.seconds, args.max_requests)
        payloads = _load_payloads(args, payloads_from_csv)
        backend, uri = _load_target(args)
    except LoadTestError as problem:
        raise UsageError(str(problem)) from None
    try:
        base, path = check_uri(uri, insecure=args.insecure)
        headers = _scoring_headers(args)
        out = (args.out or (args.workdir or Path(".work")) / "loadtest").resolve()
        print(f"loadtest: {args.users} users for up to {args.seconds:g} s against {uri}", flush=True)
        result = run_load(
            base, path, payloads, users=args.users, seconds=args.seconds,
            max_requests=args.max_requests, out_dir=out, headers=headers,
        )  # fmt: skip
    except LoadTestError as problem:
        raise UsageError(str(problem)) from None
    finally:
        if backend is not None:
            backend.close()
    print("\n".join(result.lines()), flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(result.as_json(), indent=2), encoding="utf-8")
    missed = result.missed(Budget(p99_ms=args.p99_ms, max_errors=args.max_errors))
    for problem in missed:
        print(f"loadtest: budget missed: {problem}", file=sys.stderr)
    return EXIT_BUDGET_MISSED if missed else EXIT_OK


def _load_payloads(args: argparse.Namespace, from_csv: Callable[[Path, int], list[bytes]]) -> list[bytes]:
    if args.data is not None:
        if not args.data.is_file():
            raise UsageError(f"--data {args.data}: no such file; give a CSV in the taxi schema")
        return from_csv(args.data, args.rows_per_request)
    payload = args.payload or REQUEST_SAMPLE
    if not payload.is_file():
        raise UsageError(f"--payload {payload}: no such file; give one JSON request body")
    return [payload.read_bytes()]


def _load_target(args: argparse.Namespace) -> tuple[Any, str]:
    """(backend to close or None, scoring URI): --uri as given, or the local endpoint served for this run."""
    if args.uri is not None:
        return None, args.uri
    from mlops.backends.local import LocalBackend

    workdir = args.workdir.resolve()
    if not (workdir / "endpoints.json").is_file():
        raise UsageError(
            f"--workdir {workdir}: no local deploy there; run `python -m mlops deploy --target local`"
        )
    backend = LocalBackend(workdir, keep_endpoint_up=True)
    state = backend.ensure_online_endpoint(ONLINE_ENDPOINT)
    if not state.scoring_uri:
        backend.close()
        raise UsageError(f"{ONLINE_ENDPOINT} in {workdir} has no deployment taking traffic; deploy first")
    return backend, state.scoring_uri


def _scoring_headers(args: argparse.Namespace) -> dict[str, str]:
    headers = {}
    key = args.key or os.environ.get("SCORING_KEY")
    if key:
        headers["Authorization"] = f"Bearer {key}"
    if args.deployment:
        headers["azureml-model-deployment"] = args.deployment
    return headers


def _print_summary(summary: DeploySummary) -> None:
    print("\n".join(summary.lines()), flush=True)


def _serve_until_interrupted(scoring_uri: str) -> None:
    print(f"serving at {scoring_uri}; press Ctrl-C to stop", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        print("stopping the endpoint", file=sys.stderr)


def run() -> None:
    """Entry point for `python -m mlops`."""
    # A deploy stopped by SIGTERM or Ctrl-C must still stop the servers it started: both become
    # KeyboardInterrupt, even when a non-interactive parent (make, a script's `&`) ignored SIGINT.
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())
