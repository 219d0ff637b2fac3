"""Rendering of a plan for terminals (rich), pull-request comments (markdown) and tools (JSON)."""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table

from .plan import Plan
from .rules import COLORS

__all__ = ["render_text", "render_markdown", "render_json", "bar"]

PLAN_MARKER = "<!-- bluegreen-plan -->"


def bar(weight: int, width: int = 20) -> str:
    """A text bar for a weight 0..100: '██████░░░░' style."""
    full = round(weight * width / 100)
    return "█" * full + "░" * (width - full)


def _changes_text(row) -> str:
    if not row.changes:
        return "—" if row.kind != "current" else ""
    return "; ".join(f"{c.action} {c.name}" + (f" ({', '.join(c.properties)})" if c.properties else "") for c in row.changes)


def render_text(plan: Plan, console: Console) -> None:
    r = plan.rollout
    console.print(
        f"[bold]bluegreen plan[/bold] · stack [cyan]{plan.stack}[/cyan] · stable [bold]{r.stable}[/bold] · "
        f"candidate [bold]{r.candidate}[/bold] · step {r.step} of {r.last_step} · steps {list(r.steps)}"
    )
    table = Table(show_lines=False)
    table.add_column("step")
    for c in COLORS:
        table.add_column(c, justify="right", style="blue" if c == "blue" else "green")
    table.add_column("what it is")
    table.add_column("resources that change")
    if plan.verdicts:
        table.add_column("policy")
    per_row, skipped = _per_row(plan)
    for i, row in enumerate(plan.rows):
        cells = [row.label, *[f"{row.weights[c]}%" for c in COLORS], row.transition, _changes_text(row)]
        if plan.verdicts:
            cells.append(_verdict_text(*per_row[i]))
        table.add_row(*cells)
    console.print(table)
    steps = [row for row in plan.rows if row.kind not in ("current",)]
    if steps:
        counts = sorted({len(row.changes) for row in steps})
        console.print(f"{len(steps)} update(s) simulated; resources changed per update: {', '.join(map(str, counts))}")
    if plan.verdicts:
        mandatory = sum(1 for vs in plan.verdicts.values() for v in _split(vs)[0] if v.get("enforcementLevel") == "mandatory")
        advisory = sum(1 for vs in plan.verdicts.values() for v in _split(vs)[0] if v.get("enforcementLevel") == "advisory")
        console.print(f"policy (offline, the real pack): {mandatory} mandatory and {advisory} advisory violation(s)")
        if skipped:
            console.print(f"note: {_skipped_note(skipped)}")


NOT_EVALUATED_OFFLINE = "not evaluated offline"  # rollout.analyzer.NOT_EVALUATED_OFFLINE (a test keeps them equal)


def _split(verdicts) -> tuple[list, list[str]]:
    """(violations, names of the policies that were not evaluated offline)."""
    found, skipped = [], []
    for v in verdicts:
        if str(v.get("message", "")).startswith(NOT_EVALUATED_OFFLINE):
            if v.get("policyName") not in skipped:
                skipped.append(v.get("policyName", ""))
        else:
            found.append(v)
    return found, skipped


def _per_row(plan: Plan) -> tuple[dict[int, tuple[list, int]], list[str]]:
    """Each row's violations not shown in an earlier row, how many it repeats, and (once) the policies
    that were not evaluated offline. A baseline violation present at every step is shown once."""
    seen: set[tuple[str, str, str]] = set()
    rows: dict[int, tuple[list, int]] = {}
    skipped_all: list[str] = []
    for i in range(len(plan.rows)):
        found, skipped = _split(plan.verdicts.get(i, []))
        new = [v for v in found if (v.get("policyName", ""), v.get("enforcementLevel", ""), v.get("message", "")) not in seen]
        seen.update((v.get("policyName", ""), v.get("enforcementLevel", ""), v.get("message", "")) for v in found)
        rows[i] = (new, len(found) - len(new))
        skipped_all += [p for p in skipped if p not in skipped_all]
    return rows, skipped_all


def _verdict_text(new, repeated: int) -> str:
    text = "\n".join(f"{v.get('enforcementLevel', '')} {v.get('policyName', '')}: {v.get('message', '')}" for v in new)
    if repeated:
        text += ("\n" if text else "") + f"({repeated} as above)"
    return text or "pass"


def _verdict_markdown(new, repeated: int) -> str:
    def cell(text: str) -> str:
        return " ".join(str(text).split()).replace("|", "\\|")

    parts = [f"**{v.get('enforcementLevel', '')}** `{v.get('policyName', '')}`: {cell(v.get('message', ''))}" for v in new]
    if repeated:
        parts.append(f"_({repeated} as above)_")
    return "<br>".join(parts) or "pass"


def _skipped_note(skipped: list[str]) -> str:
    return f"{NOT_EVALUATED_OFFLINE} (they need live AWS and run at `pulumi preview` / `pulumi up`): {', '.join(skipped)}"


_POLICY_NOTE = (
    "_Policy: the real `bluegreen` pack over its gRPC protocol, in offline mode: each row is judged as the update from the "
    "row above, whose simulated listener stands in for live AWS. `healthy-promotion` and `bake-time` need live AWS "
    "(health probes, CloudWatch, the clock) and run at `pulumi preview` / `pulumi up`._"
)


_JUDGE_NOTE = (
    "_Health gate: a step that gives more traffic to a colour already carrying some needs the relative judge's `pass` "
    "(its 5xx, connection-error and slow-request rates against stable's over the same minutes, valid at every look); "
    "`insufficient` holds the step until the evidence is there. See how long each step needs: "
    "`python -m rollout status --stack <stack> --bake-plan 3`._"
)


def render_markdown(plan: Plan, *, synthetic_path: str | None = None) -> str:
    """The plan as a pull-request comment. ``synthetic_path``: the stack declares it representative of user
    requests (bluegreen:probe.syntheticRepresentative), so the comment says a pass may rest on synthetic evidence."""
    r = plan.rollout
    lines = [
        PLAN_MARKER,
        f"### bluegreen plan: `{plan.stack}`",
        "",
        f"Stable **{r.stable}**, candidate **{r.candidate}**, step **{r.step}** of {r.last_step} (steps {', '.join(map(str, r.steps))}).",
        "",
        "| step | " + " | ".join(COLORS) + " | what it is | resources that change |" + (" policy |" if plan.verdicts else ""),
        "|---|" + "---|" * len(COLORS) + "---|---|" + ("---|" if plan.verdicts else ""),
    ]
    per_row, skipped = _per_row(plan)
    for i, row in enumerate(plan.rows):
        weights = " | ".join(f"`{bar(row.weights[c], 10)}` {row.weights[c]}%" for c in COLORS)
        changes = "<br>".join(
            f"{c.action} `{c.name}`" + (f" ({', '.join(c.properties)})" if c.properties else "") for c in row.changes
        ) or ("—" if row.kind != "current" else "")
        cell = f"| {row.label} | {weights} | {row.transition} | {changes} |"
        if plan.verdicts:
            cell += f" {_verdict_markdown(*per_row[i])} |"
        lines.append(cell)
    lines += ["", "_Simulated offline: the real program under Pulumi's mock runtime with the real stack file._"]
    lines += ["", _JUDGE_NOTE]
    if synthetic_path:
        lines += ["", f"_Synthetic evidence: this stack declares the synthetic requests to `{synthetic_path}` representative of user "
                      "requests (`bluegreen:probe.syntheticRepresentative`), so a step's `pass` may rest on them when user traffic is "
                      "too thin to show it; `python -m rollout gate` and `status` say **PASS ON SYNTHETIC EVIDENCE** when it does. A "
                      "regression that only user requests hit is then not guarded against._"]
    if plan.verdicts:
        lines += ["", _POLICY_NOTE]
        if skipped:
            lines += ["", f"_Note: {_skipped_note(skipped)}._"]
    lines += [""]
    return "\n".join(lines)


def render_json(plan: Plan) -> str:
    return json.dumps(plan.to_dict(), indent=2, sort_keys=False)
