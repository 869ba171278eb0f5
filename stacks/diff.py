"""Typed diff of two offline plans: resources added, removed and changed; replacements, data loss marked."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal, Mapping, Sequence

from stacks.model import SECRET_MASK
from stacks.replacement import loses_data, refusal, replaces

Action = Literal["create", "delete", "update", "replace"]
# Values under these keys are shown masked even when a plan carries them in plaintext (crafted or old plans).
SECRET_KEY = re.compile(
    r"(password|secret|secretvalue|token|pat|personalaccesstoken|privatekey|serviceprincipalkey|"
    r"connectionstring|instrumentationkey|customdata)$",
    re.IGNORECASE,
)
COLLAPSE_OVER = 8
MAX_VALUE_CHARS = 120
CONTEXT_CHARS = 24
"""Characters kept on each side of the part that changed, when a value is too long to show whole."""
UNPROTECT = (
    "blocked: the resource is protected, so `pulumi up` stops before deleting it. Revert the change, or "
    "accept losing it: `pulumi state unprotect '{urn}'`, then `pulumi up` (for a soft-deleted name, "
    "Key Vault or workspace, also set a new postfix)"
)


class DiffInputError(Exception):
    """A plan file or git ref is unusable; the message names it and says how to fix it."""


@dataclass(frozen=True)
class PropertyChange:
    """One input that differs, with display-safe values (secrets masked) and what the change means."""

    path: str
    old: str | None
    new: str | None
    replaces: bool = False
    secrecy: str | None = None
    """"secret -> plaintext" or "plaintext -> secret" when the value changes sides."""
    refused: str | None = None
    """Why Azure refuses this change in place, and the way out (nothing is replaced)."""


@dataclass(frozen=True)
class ResourceChange:
    """What happens to one resource between the two plans."""

    key: str
    type: str
    name: str
    action: Action
    changes: tuple[PropertyChange, ...] = ()
    data_loss: bool = False
    retained: bool = False
    protected: bool = False
    """The base (deployed) resource is protected: Pulumi refuses to delete or replace it."""
    urn: str = ""

    @property
    def blocked(self) -> bool:
        return self.protected and self.action in ("replace", "delete")

    @property
    def refused(self) -> bool:
        return any(change.refused for change in self.changes)


@dataclass(frozen=True)
class PlanDiff:
    """The changes between a base plan and a head plan, resources in head order (removed ones last)."""

    base_label: str
    head_label: str
    resources: tuple[ResourceChange, ...] = ()
    config: tuple[PropertyChange, ...] = field(default_factory=tuple)

    def of(self, *actions: Action) -> list[ResourceChange]:
        return [change for change in self.resources if change.action in actions]

    @property
    def has_changes(self) -> bool:
        return bool(self.resources or self.config)


def resource_key(urn: str) -> str:
    """A URN without its stack, so the same resource matches across stacks (dev vs prod) and refs."""
    parts = urn.split("::", 1)
    return parts[1] if len(parts) == 2 else urn


def flatten(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Leaf values of nested inputs as (dotted.path[index], value); empty containers are leaves."""
    if isinstance(value, Mapping) and value:
        for key in sorted(value):
            yield from flatten(value[key], f"{path}.{key}" if path else str(key))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from flatten(item, f"{path}[{index}]")
    else:
        yield path, value


def is_secret_path(path: str) -> bool:
    """Whether the last key of a dotted path names a secret (list indexes ignored)."""
    leaf = re.sub(r"(\[\d+\])+$", "", path).rsplit(".", 1)[-1]
    return bool(SECRET_KEY.search(leaf))


def _text(value: Any) -> str:
    """A plan value as text: whole numbers as integers (the engine's protobuf numbers are doubles)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        return value
    return json.dumps(_integral(value))


def _integral(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_integral(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _integral(item) for key, item in value.items()}
    return value


def _shorten(text: str) -> str:
    if len(text) <= MAX_VALUE_CHARS:
        return text
    head = MAX_VALUE_CHARS // 2
    return f"{text[:head]}…{text[-(MAX_VALUE_CHARS - head - 1):]}"


def display(value: Any, path: str) -> str | None:
    """One value as shown to reviewers: secrets masked, integers as integers, long values shortened."""
    if value is None:
        return None
    if value == SECRET_MASK or is_secret_path(path):
        return SECRET_MASK
    return _shorten(_text(value))


def display_pair(old: Any, new: Any, path: str) -> tuple[str | None, str | None]:
    """Old and new as shown: whole when short, else cut around the part that changed, so it stays visible."""
    shown = display(old, path), display(new, path)
    if None in shown or SECRET_MASK in shown:
        return shown
    before, after = _text(old), _text(new)
    if max(len(before), len(after)) <= MAX_VALUE_CHARS:
        return before, after
    prefix = 0
    while prefix < min(len(before), len(after)) and before[prefix] == after[prefix]:
        prefix += 1
    suffix = 0
    while suffix < min(len(before), len(after)) - prefix and before[-1 - suffix] == after[-1 - suffix]:
        suffix += 1
    start = max(prefix - CONTEXT_CHARS, 0)

    def window(text: str) -> str:
        end = len(text) - max(suffix - CONTEXT_CHARS, 0)
        middle = text[start:end]
        if len(middle) > MAX_VALUE_CHARS:  # the change itself is long: keep its start and its end
            middle = _shorten(middle)
        return ("…" if start else "") + middle + ("…" if end < len(text) else "")

    return window(before), window(after)


def property_changes(
    resource_type: str, old: Mapping[str, Any], new: Mapping[str, Any]
) -> list[PropertyChange]:
    """Every leaf input that differs; a secret stays masked on both sides, even when it turns plaintext."""
    before, after = dict(flatten(old)), dict(flatten(new))
    changes = []
    for path in sorted(set(before) | set(after)):
        if path == "":
            continue
        was, now = before.get(path), after.get(path)
        if _integral(was) == _integral(now):
            continue
        # A value secret on either side is masked on both: the plaintext side would leak the secret.
        secrecy = None
        if SECRET_MASK in (was, now) and None not in (was, now):
            secrecy = "secret -> plaintext" if was == SECRET_MASK else "plaintext -> secret"
        if SECRET_MASK in (was, now):
            shown_was, shown_now = (None if v is None else SECRET_MASK for v in (was, now))
        else:
            shown_was, shown_now = display_pair(was, now, path)
        rule = refusal(resource_type, path, was, now)
        changes.append(
            PropertyChange(
                path,
                shown_was,
                shown_now,
                replaces(resource_type, path),
                secrecy=secrecy,
                refused=f"{rule.source}. Way out: {rule.way_out}" if rule else None,
            )
        )
    return changes


def _option_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[PropertyChange]:
    return [
        PropertyChange(f"({option})", json.dumps(old.get(option)), json.dumps(new.get(option)))
        for option in ("protect", "retainOnDelete")
        if old.get(option) != new.get(option)
    ]


def diff_plans(
    base: Mapping[str, Any], head: Mapping[str, Any], base_label: str = "base", head_label: str = "head"
) -> PlanDiff:
    """Compare two plan documents (`python -m stacks plan --json`) resource by resource."""
    old_by_key = {resource_key(r["urn"]): r for r in base.get("resources", [])}
    new_by_key = {resource_key(r["urn"]): r for r in head.get("resources", [])}
    results: list[ResourceChange] = []
    for key, resource in new_by_key.items():
        if not resource.get("custom", True):
            continue
        previous = old_by_key.get(key)
        if previous is None:
            results.append(ResourceChange(key, resource["type"], resource["name"], "create"))
            continue
        changes = property_changes(
            resource["type"], previous.get("inputs") or {}, resource.get("inputs") or {}
        )
        changes += _option_changes(previous, resource)
        if changes:
            replaced = any(change.replaces for change in changes)
            results.append(
                ResourceChange(
                    key,
                    resource["type"],
                    resource["name"],
                    "replace" if replaced else "update",
                    tuple(changes),
                    data_loss=replaced and loses_data(resource["type"]),
                    protected=bool(previous.get("protect")),
                    urn=str(previous.get("urn", "")),
                )
            )
    for key, resource in old_by_key.items():
        if key not in new_by_key and resource.get("custom", True):
            retained = bool(resource.get("retainOnDelete"))
            results.append(
                ResourceChange(
                    key,
                    resource["type"],
                    resource["name"],
                    "delete",
                    data_loss=loses_data(resource["type"]) and not retained,
                    retained=retained,
                    protected=bool(resource.get("protect")),
                    urn=str(resource.get("urn", "")),
                )
            )
    config = property_changes("config", base.get("config") or {}, head.get("config") or {})
    # Sorted by type and name: registration order varies between runs, PR comments should not.
    return PlanDiff(
        base_label, head_label, tuple(sorted(results, key=lambda c: (c.type, c.name))), tuple(config)
    )


def load_plan(path: Path) -> dict[str, Any]:
    """Read a plan JSON file written by `python -m stacks plan --json`."""
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise DiffInputError(
            f"plan file {path} does not exist; write it with "
            "`python -m stacks plan --stack <stack> --json FILE`"
        ) from None
    except json.JSONDecodeError as error:
        raise DiffInputError(
            f"plan file {path} is not JSON ({error}); regenerate it with " "`python -m stacks plan --json`"
        ) from None
    if not isinstance(document, dict) or not isinstance(document.get("resources"), list):
        raise DiffInputError(
            f"plan file {path} has no `resources` list; is it a `python -m stacks plan --json` " "output?"
        )
    return document


def _mark(change: ResourceChange) -> str:
    if change.action == "delete" and change.retained and not change.blocked:
        return "delete from stack (retained in Azure)"
    marks = [change.action.upper() if change.action == "replace" else change.action]
    if change.data_loss:
        marks = [change.action.upper(), "DATA LOSS"]
    if change.blocked:
        marks.append("BLOCKED: protected")
    if change.refused:
        marks.append("AZURE REFUSES")
    return ", ".join(marks)


def _notes(prop: PropertyChange) -> list[str]:
    notes = []
    if prop.replaces:
        notes.append("forces replacement")
    if prop.secrecy:
        notes.append(prop.secrecy)
    if prop.refused:
        notes.append("Azure refuses this in place")
    return notes


def _suffix(notes: list[str]) -> str:
    return f"  ({'; '.join(notes)})" if notes else ""


def render_text(diff: PlanDiff) -> str:
    """Plain text for terminals and logs."""
    lines = [f"plan diff {diff.base_label} -> {diff.head_label}: {summary(diff)}"]
    symbols = {"create": "+", "delete": "-", "update": "~", "replace": "+-"}
    for change in diff.resources:
        lines.append(f"{symbols[change.action]:>2} {change.type}  {change.name}  [{_mark(change)}]")
        for prop in change.changes:
            notes = _notes(prop)
            lines.append(f"      {prop.path}: {prop.old} -> {prop.new}{_suffix(notes)}")
            if prop.refused:
                lines.append(f"        {prop.refused}")
        if change.blocked:
            lines.append(f"      {UNPROTECT.format(urn=change.urn)}")
    for prop in diff.config:
        lines.append(f" ~ config {prop.path}: {prop.old} -> {prop.new}{_suffix(_notes(prop))}")
    return "\n".join(lines)


def counts(diff: PlanDiff) -> dict[str, int]:
    """What the change does, counted: the numbers of the summary line."""
    return {
        "to add": len(diff.of("create")),
        "to change": len(diff.of("update")),
        "to replace": len(diff.of("replace")),
        "to remove": len(diff.of("delete")),
        "losing data": sum(change.data_loss for change in diff.resources),
        "blocked": sum(change.blocked for change in diff.resources),
        "refused by Azure": sum(change.refused for change in diff.resources),
    }


def summary(diff: PlanDiff) -> str:
    """One line: adds, changes, replacements, removals, data loss (and blocked or refused changes)."""
    if not diff.has_changes:
        return "no changes"
    numbers = counts(diff)
    shown = [
        f"{numbers[label]} {label}"
        for label in ("to add", "to change", "to replace", "to remove", "losing data")
    ]
    shown += [f"{numbers[label]} {label}" for label in ("blocked", "refused by Azure") if numbers[label]]
    if diff.config:
        shown.append(f"{len(diff.config)} config key(s) changed")
    return ", ".join(shown)


def render_summary(diffs: Mapping[str, PlanDiff], markdown: bool = False) -> str:
    """One summary line per stack (text), or a table with one row per stack (markdown)."""
    if not markdown:
        return "\n".join(f"{stack or diff.head_label}: {summary(diff)}" for stack, diff in diffs.items())
    labels = ("to add", "to change", "to replace", "to remove", "losing data", "blocked", "refused by Azure")
    rows = ["| stack | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for stack, diff in diffs.items():
        numbers = counts(diff)
        rows.append(
            f"| {stack or diff.head_label} | " + " | ".join(str(numbers[label]) for label in labels) + " |"
        )
    return "\n".join(rows)


def _code(value: str | None) -> str:
    if value is None:
        return "_(absent)_"
    return "`" + value.replace("`", "'").replace("|", "\\|") + "`"


def _collapsible(summary_text: str, body: list[str], count: int) -> list[str]:
    if count <= COLLAPSE_OVER:
        return body
    return [f"<details><summary>{summary_text}</summary>", "", *body, "", "</details>"]


def _markdown_note(prop: PropertyChange) -> str:
    notes = [f"**{note}**" for note in _notes(prop)]
    if prop.refused:
        notes.append(prop.refused.replace("|", "/"))
    return "; ".join(notes)


def _property_table(changes: tuple[PropertyChange, ...]) -> list[str]:
    rows = ["| property | old | new | |", "|---|---|---|---|"]
    rows += [f"| `{c.path}` | {_code(c.old)} | {_code(c.new)} | {_markdown_note(c)} |" for c in changes]
    return rows


def _resource_heading(change: ResourceChange) -> str:
    flag = {"replace": " :warning: **replace**", "delete": ""}.get(change.action, "")
    if change.data_loss:
        flag = f" :rotating_light: **{change.action}: data loss**"
    elif change.retained:
        flag = " (retained in Azure)"
    if change.blocked:
        flag += " :no_entry: **blocked: protected**"
    if change.refused:
        flag += " :no_entry: **Azure refuses**"
    return f"- `{change.type}` **{change.name}**{flag}"


def _caution(diff: PlanDiff) -> list[str]:
    lost = [change for change in diff.resources if change.data_loss]
    blocked = [change for change in diff.resources if change.blocked]
    refused = [change for change in diff.resources if change.refused]
    replaced = [change for change in diff.of("replace") if not change.data_loss]
    if not (lost or blocked or refused or replaced):
        return []
    lines = ["", "> [!CAUTION]"]
    if blocked:
        lines += ["> `pulumi up` will stop at these protected resources:"]
        lines += [f"> - `{c.type}` **{c.name}**: {UNPROTECT.format(urn=c.urn)}" for c in blocked]
    if refused:
        lines += ["> Azure refuses these changes in place (nothing is replaced; `pulumi up` fails):"]
        lines += [
            f"> - `{c.type}` **{c.name}** `{p.path}`: {p.refused}"
            for c in refused
            for p in c.changes
            if p.refused
        ]
    if lost:
        lines += ["> These changes delete or replace resources that hold data:"]
        lines += [f"> - `{c.type}` **{c.name}**: {_mark(c)}" for c in lost]
    if replaced:
        lines += [f"> {len(replaced)} other resource(s) will be replaced (marked below)."]
    return lines


def render_markdown(diff: PlanDiff) -> str:
    """A PR comment: summary, blocked, refused and data-loss warnings first, then sections per action."""
    lines = [
        f"#### Infrastructure diff `{diff.base_label}` → `{diff.head_label}`",
        "",
        f"**{summary(diff)}**",
        *_caution(diff),
    ]
    sections: list[tuple[str, list[Action]]] = [
        ("Added", ["create"]),
        ("Removed", ["delete"]),
        ("Changed", ["replace", "update"]),
    ]
    for title, actions in sections:
        changes = diff.of(*actions)
        if not changes:
            continue
        body: list[str] = []
        for change in changes:
            body.append(_resource_heading(change))
            if change.changes:
                body += ["", *[f"  {row}" for row in _property_table(change.changes)], ""]
        lines += [
            "",
            f"##### {title} ({len(changes)})",
            "",
            *_collapsible(f"{len(changes)} resources", body, len(changes)),
        ]
    if diff.config:
        lines += [
            "",
            f"##### Config ({len(diff.config)})",
            "",
            *_collapsible(f"{len(diff.config)} keys", _property_table(diff.config), len(diff.config)),
        ]
    return "\n".join(lines) + "\n"


def _stack_args(stacks: Sequence[str]) -> list[str]:
    return [arg for stack in stacks for arg in ("--stack", stack)]


def plan_at_ref(ref: str, stacks: Sequence[str], repo: Path, out: Path) -> subprocess.Popen[bytes]:
    """Start planning `stacks` as committed at `ref` in a temporary git worktree, one process for all.

    `out` is a path pattern containing `{stack}`; the caller waits on the returned process.
    """
    worktree = out.parent / "base-worktree"
    added = subprocess.run(
        ["git", "-C", str(repo), "worktree", "add", "--detach", "--force", str(worktree), ref],
        capture_output=True,
        text=True,
    )
    if added.returncode != 0:
        raise DiffInputError(
            f"cannot check out --base-ref {ref!r}: {added.stderr.strip()} "
            "(fetch it first, e.g. `git fetch origin main` and pass origin/main)"
        )
    if not (worktree / "stacks" / "plan.py").exists():
        for stack in stacks:
            Path(str(out).replace("{stack}", stack)).write_text(
                json.dumps({"version": 1, "stack": stack, "config": {}, "resources": []})
            )
        return subprocess.Popen(["true"])
    return _plan_job(stacks, worktree, out)


def _plan_job(stacks: Sequence[str], cwd: Path, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "stacks", "plan", *_stack_args(stacks), "--quiet", "--json", str(out)],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _plan_one_by_one(stacks: Sequence[str], cwd: Path, out: Path) -> bytes:
    """Plan stacks one process each: a base ref whose CLI predates several `--stack` in one call."""
    for stack in stacks:
        job = _plan_job([stack], cwd, Path(str(out).replace("{stack}", stack)))
        _, errors = job.communicate()
        if job.returncode != 0:
            return errors or b""
    return b""


def diff_stacks_against_ref(
    stacks: Sequence[str], ref: str, repo: Path, head_plans: str | None = None, save_head: str | None = None
) -> dict[str, PlanDiff]:
    """Plan `stacks` at git `ref` and in the working tree, in parallel, one process per side; diff each.

    `head_plans`: a `{stack}` path pattern of working-tree plans already written (not planned again).
    `save_head`: a `{stack}` path pattern to keep the working-tree plans that were made here.
    """
    with tempfile.TemporaryDirectory(prefix="stacks-diff-") as scratch:
        base_out = Path(scratch) / "base-{stack}.json"
        head_out = Path(head_plans or save_head or str(Path(scratch) / "head-{stack}.json"))
        head_job: subprocess.Popen[bytes] | None = None
        try:
            base_job = plan_at_ref(ref, stacks, repo, base_out)
            head_job = _plan_job(stacks, repo, head_out) if head_plans is None else None
            _, base_errors = base_job.communicate()
            if base_job.returncode != 0 and len(stacks) > 1:
                base_errors = _plan_one_by_one(stacks, Path(scratch) / "base-worktree", base_out)
            elif base_job.returncode == 0:
                base_errors = b""
            if base_errors:
                raise DiffInputError(
                    f"planning {', '.join(stacks)} at {ref} failed:\n{base_errors.decode().strip()}"
                )
            if head_job is not None:
                _, head_errors = head_job.communicate()
                if head_job.returncode != 0:
                    raise DiffInputError(
                        f"planning {', '.join(stacks)} in the working tree failed:\n{(head_errors or b'').decode().strip()}"
                    )
            return {
                stack: diff_plans(
                    load_plan(Path(str(base_out).replace("{stack}", stack))),
                    load_plan(Path(str(head_out).replace("{stack}", stack))),
                    f"{stack}@{ref}",
                    f"{stack}@working tree",
                )
                for stack in stacks
            }
        finally:
            if head_job is not None and head_job.poll() is None:  # the base failed: stop planning the head
                head_job.kill()
                head_job.wait()
            subprocess.run(
                [
                    "git",
                    "-C",
                    str(repo),
                    "worktree",
                    "remove",
                    "--force",
                    str(Path(scratch) / "base-worktree"),
                ],
                capture_output=True,
            )


def diff_against_ref(stack: str, ref: str, repo: Path, head_plan: Path | None = None) -> PlanDiff:
    """Plan `stack` at git `ref` and in the working tree (in parallel, unless `head_plan` is given); diff."""
    return diff_stacks_against_ref([stack], ref, repo, str(head_plan) if head_plan else None)[stack]
