"""`python -m rollout`: the operator's commands. Thin: every decision lives in the library.

Exit codes (every command): 0 ok; 1 the gate failed, drift found, the live state could not be
read, a move the rollout rules refuse, or a Pulumi command failed or could not run; 2 usage or
config error (bad arguments, invalid stack file, unreadable thresholds file).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.table import Table

from .errors import ConfigError, LiveStateError, PulumiCliError, RolloutError, TransitionError

__all__ = ["main", "cli", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE"]

EXIT_OK = 0
EXIT_FAILED = 1  # the gate failed, drift found, or a command refused
EXIT_USAGE = 2  # bad input: config or arguments


def _console() -> Console:
    return Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 160)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


class _Group(click.Group):
    """Turns a library error nobody caught into an operator message and an exit code, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as e:
            _fail(str(e), EXIT_USAGE)
        except RolloutError as e:
            _fail(str(e), EXIT_FAILED)


class _ColorChoice(click.Choice):
    """click.Choice that suggests the closest colour ("did you mean 'blue'?")."""

    def convert(self, value, param, ctx):
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter as e:
            import difflib

            close = difflib.get_close_matches(str(value).lower(), list(self.choices), n=1, cutoff=0.5)
            if close:
                self.fail(f"{value!r} is not one of {', '.join(map(repr, self.choices))} (did you mean {close[0]!r}?)", param, ctx)
            raise e


class _Obj:
    def __init__(self, project_dir: Path, webhook_url: str | None):
        self.project_dir = project_dir
        self.webhook_url = webhook_url


def find_project_dir(start: Path) -> Path | None:
    """The nearest folder at or above `start` holding Pulumi.yaml (as `pulumi` itself looks for it)."""
    for folder in (start, *start.parents):
        if (folder / "Pulumi.yaml").is_file():
            return folder
    return None


def _default_project_dir() -> Path:
    """Pulumi.yaml in the working folder or above; else this checkout (`python -m rollout` in the repo)."""
    from .simulate import ROOT

    found = find_project_dir(Path.cwd().resolve())
    if found is not None:
        return found
    if (ROOT / "Pulumi.yaml").is_file():
        return ROOT
    _fail(f"no Pulumi.yaml in {Path.cwd()} or any folder above it: run inside the bluegreen project or pass --project-dir", EXIT_USAGE)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--project-dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    envvar="BLUEGREEN_PROJECT_DIR",
    default=None,
    help="Where Pulumi.yaml and the Pulumi.<stack>.yaml files live; Pulumi commands run here. [default: this checkout]",
)
@click.option(
    "--webhook-url",
    envvar="BLUEGREEN_WEBHOOK_URL",
    default=None,
    metavar="URL",
    help="Slack-compatible webhook for promotion, block and rollback notices (env BLUEGREEN_WEBHOOK_URL). Off when unset.",
)
@click.pass_context
def cli(ctx: click.Context, project_dir: Path | None, webhook_url: str | None) -> None:
    """bluegreen: progressive blue/green delivery on AWS, one traffic step per `pulumi up`.

    Exit codes: 0 ok; 1 gate failed, drift, refused or a Pulumi command failed; 2 usage or config error.
    """
    ctx.obj = _Obj((project_dir or _default_project_dir()).resolve(), webhook_url)


def _obj() -> _Obj:
    return click.get_current_context().find_object(_Obj)


# --------------------------------------------------------------------------- shared helpers


def _stack_file_name(stack: str) -> str:
    """`production` for `production`, `my-org/production` and `my-org/bluegreen/production`: the stack
    file is named after the stack alone, while Pulumi commands get the fully qualified name."""
    return stack.rsplit("/", 1)[-1]


def _stack_hint(stack: str, root: Path) -> str:
    import difflib

    stacks = [p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml")]
    close = difflib.get_close_matches(_stack_file_name(stack), stacks, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _load(stack: str):
    """(raw config map, validated StackConfig) of Pulumi.<stack>.yaml; exit 2 when missing or invalid."""
    from .config import parse_stack_config
    from .simulate import load_stack_file

    root = _obj().project_dir
    try:
        raw = load_stack_file(_stack_file_name(stack), root)
    except FileNotFoundError as e:
        _fail(f"{e}{_stack_hint(stack, root)}", EXIT_USAGE)
    except Exception as e:  # YAML syntax
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: {getattr(e, 'problem', '')}" if mark is not None else " ".join(str(e).split())
        _fail(f"cannot read Pulumi.{_stack_file_name(stack)}.yaml: YAML syntax error at {where}", EXIT_USAGE)
    bluegreen = {k.split(":", 1)[1]: v for k, v in raw.items() if k.startswith("bluegreen:")}
    try:
        parsed = parse_stack_config(bluegreen, region=raw.get("aws:region"))
    except ConfigError as e:
        _fail(f"invalid stack config in Pulumi.{stack}.yaml: {e}", EXIT_USAGE)
    return raw, parsed


def _notify(event: str, stack: str, text: str) -> None:
    """Send a notification if a webhook is configured; report (never fail) when it cannot be delivered."""
    from .notify import format_message, send, webhook_url

    url = webhook_url(_obj().webhook_url)
    if not url:
        return
    link = None
    if os.environ.get("GITHUB_RUN_ID") and os.environ.get("GITHUB_REPOSITORY"):
        server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
        link = f"{server}/{os.environ['GITHUB_REPOSITORY']}/actions/runs/{os.environ['GITHUB_RUN_ID']}"
    delivery = send(url, format_message(event, stack, text, link=link))
    if delivery.sent:
        click.echo(f"notified: {event}", err=True)
    else:
        _warn(f"the {event} notification was not delivered ({delivery.reason}); carrying on")


def _lb_arn(stack: str, explicit: str | None, *, required: bool = True) -> str | None:
    """--load-balancer-arn, else `pulumi stack output loadBalancerArn --stack S`."""
    from .operations import shell_line, stack_output_argv
    from .pulumi_cli import PulumiCli, find_pulumi

    if explicit:
        return explicit
    exe = find_pulumi()
    how = shell_line(stack_output_argv(stack, "loadBalancerArn"))
    if exe is None:
        if not required:
            return None
        _fail(f"no load balancer ARN: pass --load-balancer-arn ARN (the Pulumi CLI is not on PATH, so `{how}` cannot find it)", EXIT_USAGE)
    try:
        return PulumiCli(exe, _obj().project_dir, echo=click.echo).stack_output(stack, "loadBalancerArn")
    except PulumiCliError as e:
        _fail(f"no load balancer ARN: {e}; pass --load-balancer-arn ARN", EXIT_USAGE)


def _read_live(cfg, arn: str):
    """The live load balancer (exit 1 when it cannot be read) and the elbv2 client used."""
    from .live import elbv2_client, read_live_state

    client = elbv2_client(cfg.region)
    try:
        live = read_live_state(client, arn, production_port=443 if cfg.traffic.https else 80)
    except LiveStateError as e:
        _fail(str(e), EXIT_FAILED)
    if live.production is None:
        _fail(f"no production listener on {arn} (none tagged bluegreen:listener=production, none on port "
              f"{443 if cfg.traffic.https else 80}): is this the stack's load balancer?", EXIT_FAILED)
    return live, client


def _target_health(elbv2, arn: str | None) -> dict[str, Any]:
    if not arn:
        return {"targetGroupArn": None, "healthy": 0, "total": 0, "states": {}, "error": "no target group behind the production listener"}
    from .live import aws_fault_reason

    try:
        descs = elbv2.describe_target_health(TargetGroupArn=arn).get("TargetHealthDescriptions", [])
    except Exception as e:  # reported in the table, status goes on
        return {"targetGroupArn": arn, "healthy": 0, "total": 0, "states": {}, "error": aws_fault_reason(e, arn)}
    states = Counter(d.get("TargetHealth", {}).get("State", "unknown") for d in descs)
    return {"targetGroupArn": arn, "healthy": states.get("healthy", 0), "total": len(descs), "states": dict(states), "error": None}


def _health_text(h: dict[str, Any]) -> str:
    if h["error"]:
        return f"? ({h['error']})"
    if not h["total"]:
        return "no targets registered"
    others = ", ".join(f"{n} {s}" for s, n in sorted(h["states"].items()) if s != "healthy")
    return f"{h['healthy']} healthy of {h['total']}" + (f" ({others})" if others else "")


def _thresholds(path: Path | None):
    from .gate import GateThresholds

    if path is None:
        return GateThresholds()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        _fail(f"cannot read thresholds file {path}: {' '.join(str(e).split())}", EXIT_USAGE)
    try:
        return GateThresholds.from_mapping(data)
    except ConfigError as e:
        _fail(f"thresholds file {path}: {e}", EXIT_USAGE)


def _run_gate(cfg, color: str, live, lb_arn: str | None, elbv2, probe_base_url: str | None, thresholds, checks):
    """The gate of one colour: probes through the test listener (or --probe-base-url), target health, metrics."""
    from .gate import GateTarget, run_gate
    from .live import cloudwatch_client
    from .probe_evidence import in_vpc_probe_stack

    path = (live.health_paths.get(color) if live else None) or cfg.service.health_path
    probe_url = None
    if probe_base_url:
        probe_url = probe_base_url.rstrip("/") + path
    elif live and live.test and color in live.test.weights and live.dns_name:
        scheme = "https" if live.test.protocol.upper() == "HTTPS" else "http"
        probe_url = f"{scheme}://{cfg.traffic.test_hostname or live.dns_name}:{live.test.port}{path}"
    tg = None
    if live:
        tg = (live.production.target_groups.get(color) if live.production else None) or (live.test.target_groups.get(color) if live.test else None)
    target = GateTarget(color, probe_url=probe_url, target_group_arn=tg, load_balancer_arn=lb_arn if tg else None,
                        probe_stack=None if probe_base_url else in_vpc_probe_stack(live),
                        **_judge_context(cfg, color, live))
    return run_gate(target, thresholds, elbv2=elbv2, cloudwatch=cloudwatch_client(cfg.region) if tg else None, checks=checks)


def _judge_context(cfg, color: str, live) -> dict[str, Any]:
    """The stable target group to compare with, the colour's live share, the share the next step gives
    it, and when the live weights began (the listener's bluegreen:weights-since stamp)."""
    from datetime import datetime, timezone

    from .desired import TAG_SINCE, parse_since
    from .operations import percentages
    from .rules import other

    out: dict[str, Any] = {}
    prod = live.production if live else None
    if prod is None:
        return out
    out["baseline_target_group_arn"] = prod.target_groups.get(other(color))
    out["live_share"] = percentages(prod.weights).get(color, 0)
    r = cfg.rollout
    if color == r.candidate and r.step < r.last_step:
        out["share"] = r.steps[r.step]
    stamp = parse_since(prod.tags.get(TAG_SINCE))
    if stamp is not None:
        out["since"] = datetime.fromtimestamp(stamp[0], timezone.utc)
    return out


def _judge_line(verdict) -> str | None:
    """One line for operators: the judge's verdict, e-value and what it still needs."""
    j = verdict.judge
    if not j:
        return None
    text = f"judge: {j['verdict']} · e-value {j['eValue'] if j['eValue'] is not None else 'inf'} (alarm at {j['threshold']:g})"
    text += f" · {j['minutes']} min · candidate {j['candidateRequests']:g} / stable {j['stableRequests']:g} requests"
    if j.get("passBasis") == "synthetic":
        text += " · PASS ON SYNTHETIC EVIDENCE (bluegreen:probe.syntheticRepresentative): user traffic alone has not shown it"
    if j["verdict"] == "insufficient":
        needed = j.get("minutesNeeded")
        text += " · " + (f"~{math.ceil(needed)} more min at current traffic" if needed is not None else "time needed unknown")
    return text


def _print_verdict(console: Console, verdict) -> None:
    table = Table(show_lines=False)
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail")
    for c in verdict.checks:
        mark = "skipped" if c.data.get("skipped") else ("[green]pass[/green]" if c.ok else "[red]FAIL[/red]")
        table.add_row(c.name, mark, c.reason)
    console.print(table)


def _bake_plan(cfg, live, lb_arn: str, th, days: int) -> dict[str, Any]:
    """From the last ``days`` days of both colours' traffic: per step, minutes to catch 2x and 3x."""
    from datetime import datetime, timedelta, timezone

    from .judge import bake_plan
    from .live import aws_fault_reason, cloudwatch_client
    from .metrics import read_traffic_summary

    tgs = [a for a in live.production.target_groups.values() if a]
    end = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    try:
        rpm, rate = read_traffic_summary(cloudwatch_client(cfg.region), load_balancer_arn=lb_arn, target_group_arns=tgs,
                                         start=end - timedelta(days=days), end=end)
    except Exception as e:  # reported, status goes on
        return {"error": aws_fault_reason(e, lb_arn), "days": days}
    kinds = 3 if th.slow_request_ms is not None else 2
    rows = bake_plan(rpm, rate, list(cfg.rollout.steps), th.judge_config(), kinds=kinds)
    return {"days": days, "requestsPerMinute": round(rpm, 1), "badRate": rate,
            "steps": [{"weight": row["weight"], "minutes2x": row["minutes"][2.0], "minutes3x": row["minutes"][3.0]} for row in rows]}


def _print_bake_plan(console: Console, plan: dict[str, Any]) -> None:
    if "error" in plan:
        click.echo(f"bake plan: CloudWatch could not be read: {plan['error']}")
        return
    click.echo(f"bake plan from the last {plan['days']} day(s): {plan['requestsPerMinute']:g} requests/min, "
               f"{plan['badRate']:.3%} target 5xx (minutes for the judge to catch a regression in ~90 % of steps)")
    table = Table(show_lines=False)
    for col in ("step", "candidate", "2x regression", "3x regression"):
        table.add_column(col, justify="right")
    for i, row in enumerate(plan["steps"], 1):
        cells = [f"{m:.0f} min" if m is not None else "—" for m in (row["minutes2x"], row["minutes3x"])]
        table.add_row(str(i), f"{row['weight']}%", *cells)
    console.print(table)


def _bar(weight: int) -> str:
    from .render import bar

    return bar(weight, 10)


# --------------------------------------------------------------------------- plan


@cli.command()
@click.option("--stack", "-s", required=True, help="Stack name; reads Pulumi.<stack>.yaml.")
@click.option("--to-step", type=int, default=None, help="Simulate only the move to this step (default: every remaining step, then finish).")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True)
@click.option("--no-policy", is_flag=True, default=False, help="Skip the policy pack (faster): no policy column.")
def plan(stack: str, to_step: int | None, fmt: str, no_policy: bool) -> None:
    """Show what each remaining step changes, and the policy pack's verdict on it: offline, no cloud
    credentials, no Pulumi CLI.

    Runs the real program under Pulumi's mock runtime with the real stack file, once per step, then
    the real policy pack (`python policy`, over the engine's gRPC protocol, started once) on each
    step, configured from policy/<stack>.json, in offline mode: the previous step stands in for live
    AWS and the pack makes no AWS call. healthy-promotion and bake-time need live AWS; they say so.

    Exits 1 when the pack would refuse any step (a mandatory violation), after printing the plan.

    Example: python -m rollout plan --stack production --format markdown
    """
    from .plan import build_plan, check_policy, start_offline_pack
    from .render import render_json, render_markdown, render_text
    from .simulate import ROOT

    project_dir = _obj().project_dir
    raw, stack_cfg = _load(stack)  # one line and exit 2 for a missing file, a YAML syntax error or invalid config
    from .config import decode_raw

    config = {k: (decode_raw(v) if k.startswith("bluegreen:") else v) for k, v in raw.items()}  # JSON-string objects too
    pack = None
    if not no_policy:  # the pack starts (~1 s), then judges each step, while the program runs for the next
        pack_config = next((p for p in (project_dir / "policy" / f"{stack}.json", ROOT / "policy" / f"{stack}.json") if p.is_file()), None)
        pack_dir = project_dir / "policy" if (project_dir / "policy" / "__main__.py").is_file() else ROOT / "policy"
        pack = start_offline_pack(_stack_file_name(stack), pack_dir=pack_dir, pack_config=pack_config)
        click.get_current_context().call_on_close(pack.close)
    try:
        program_root = project_dir if (project_dir / "__main__.py").is_file() else ROOT  # stack files only: this checkout's program
        result = build_plan(_stack_file_name(stack), to_step=to_step, config=config, root=program_root,
                            on_row=pack.submit if pack else None)
    except FileNotFoundError as e:
        _fail(str(e), EXIT_USAGE)
    except ConfigError as e:
        _fail(f"invalid stack config in Pulumi.{stack}.yaml: {e}", EXIT_USAGE)
    except RolloutError as e:
        _fail(str(e), EXIT_FAILED)
    if not no_policy:
        from .analyzer import PolicyPackError

        try:
            result = check_policy(result, pack=pack)
        except (PolicyPackError, ValueError, OSError) as e:
            _fail(f"the policy pack could not judge the plan: {e}\n(run with --no-policy to plan without it)", EXIT_FAILED)
    if fmt == "json":
        click.echo(render_json(result))
    elif fmt == "markdown":
        probe = stack_cfg.probe
        click.echo(render_markdown(result, synthetic_path=probe.synthetic_path if probe.synthetic_representative else None))
    else:
        render_text(result, _console())
    refused = [
        (result.rows[i].label, v)
        for i, verdicts in sorted(result.verdicts.items())
        for v in verdicts
        if v.get("enforcementLevel") == "mandatory"
    ]
    if refused:
        lines = "\n".join(f"  {label}: {v.get('policyName')}: {v.get('message')}" for label, v in refused)
        _fail(f"the policy pack would refuse {len(refused)} change(s) in this plan:\n{lines}", EXIT_FAILED)


# --------------------------------------------------------------------------- status


@cli.command()
@click.option("--stack", "-s", required=True, help="Stack name; reads Pulumi.<stack>.yaml.")
@click.option("--load-balancer-arn", default=None, metavar="ARN", help="Default: `pulumi stack output loadBalancerArn --stack S`.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--watch", "watch_", is_flag=True, help="Keep watching: weights, health, how long the weights held, when the next promotion is allowed.")
@click.option("--interval", type=click.FloatRange(1, 3600), default=15.0, show_default=True, help="Seconds between rounds with --watch.")
@click.option("--count", type=click.IntRange(1), default=None, help="Stop --watch after this many rounds (default: until Ctrl-C).")
@click.option("--thresholds", type=click.Path(dir_okay=False, path_type=Path), default=None, help="JSON file of gate thresholds (judge settings).")
@click.option("--bake-plan", "bake_plan_days", type=click.IntRange(1, 14), default=None, metavar="DAYS",
              help="Also plan each step's bake from the last DAYS days of traffic: minutes to catch a 2x and a 3x regression.")
def status(stack: str, load_balancer_arn: str | None, fmt: str, watch_: bool, interval: float, count: int | None,
           thresholds: Path | None, bake_plan_days: int | None) -> None:
    """Live weights and target health per colour, the relative judge's verdict on the candidate, and
    drift from the declared step (exit 1 on drift).

    Reads the production listener and target health from AWS (read-only elbv2 calls) and, while a
    step is in flight, CloudWatch for the judge (e-value, verdict, minutes still needed). With --watch
    it repeats every --interval seconds (one line per round) until Ctrl-C.

    Example: python -m rollout status --stack production --watch
    """
    if watch_:
        _watch_status(stack, load_balancer_arn, interval, count)
        return
    from .operations import compare_traffic, percentages
    from .rules import COLORS

    _, cfg = _load(stack)
    arn = _lb_arn(stack, load_balancer_arn)
    live, elbv2 = _read_live(cfg, arn)
    r = cfg.rollout
    live_w = percentages(live.production.weights)
    live_stable = live.production.tags.get("bluegreen:stable")
    drift = compare_traffic(stack, r, live.production.weights, live_stable)
    health = {c: _target_health(elbv2, live.production.target_groups.get(c)) for c in COLORS}
    from .listener_rules import read_routes, undeclared_routes

    color_of = {tg: c for c, tg in live.production.target_groups.items()}
    try:
        routes = read_routes(elbv2, live.production.arn, color_of)
    except LiveStateError as e:
        _fail(str(e), EXIT_FAILED)
    header = (cfg.traffic.header_route_name, cfg.traffic.header_route_value) if cfg.traffic.header_route_name else None
    route_problems = undeclared_routes(routes, header, r.candidate, r.weights)
    th = _thresholds(thresholds)
    judged = None
    if live_w[r.candidate] > 0:
        judged = _run_gate(cfg, r.candidate, live, arn, elbv2, None, th, ("judge",))
    plan_rows = _bake_plan(cfg, live, arn, th, bake_plan_days) if bake_plan_days else None
    aborted = _aborted(live.production.tags)

    if fmt == "json":
        click.echo(json.dumps({
            "stack": stack,
            "loadBalancerArn": arn,
            "dnsName": live.dns_name,
            "declared": {"stable": r.stable, "candidate": r.candidate, "step": r.step, "steps": list(r.steps), "weights": r.weights},
            "live": {"weights": live_w, "stable": live_stable, "listenerArn": live.production.arn},
            "health": health,
            "drift": None if drift is None else {"kind": drift.kind, "explanation": drift.explanation},
            "routes": [{"priority": x.priority, "conditions": x.conditions, "action": x.action, "forwards": dict(x.forwards)} for x in routes],
            "undeclaredRoutes": route_problems,
            "judge": None if judged is None else (dict(judged.judge) if judged.judge else {"error": judged.message()}),
            "bakePlan": plan_rows,
            "aborted": aborted,
            "held": cfg.aborted,  # bluegreen:aborted in the stack config: the header route held on stable
        }, indent=2))
    else:
        console = _console()
        console.print(f"[bold]bluegreen status[/bold] · stack [cyan]{stack}[/cyan] · {cfg.region or 'default region'}")
        console.print(f"load balancer  {arn}" + (f" ({live.dns_name})" if live.dns_name else ""))
        console.print(f"declared       step {r.step} of {r.last_step}, {r.stable} stable, {r.candidate} candidate (steps {list(r.steps)})")
        if aborted:
            console.print(f"[bold red]ABORTED[/bold red]        {aborted['text']}")
        if cfg.aborted:
            console.print(f"held           the header route stays on {r.stable} ({ABORTED_KEY}: {cfg.aborted}) until the next release")
        table = Table(show_lines=False)
        table.add_column("colour")
        table.add_column("role")
        table.add_column("declared", justify="right")
        table.add_column("live", justify="right")
        table.add_column("targets")
        for c in COLORS:
            style = "blue" if c == "blue" else "green"
            mark = "" if live_w[c] == r.weights[c] else " [red]≠[/red]"
            table.add_row(
                f"[{style}]{c}[/{style}]", "stable" if c == r.stable else "candidate",
                f"{r.weights[c]}%", f"{_bar(live_w[c])} {live_w[c]}%{mark}", _health_text(health[c]),
            )
        console.print(table)
        for x in routes:
            to = ", ".join(f"{c} {w}" for c, w in x.forwards.items()) or x.action
            console.print(f"rule {x.priority:>5}  {x.conditions} → {to}")
        if judged is not None:
            click.echo(_judge_line(judged) or f"judge: {judged.message()}")
        if plan_rows is not None:
            _print_bake_plan(console, plan_rows)
        if drift is None and not route_problems:
            console.print(f"[green]in sync[/green]: the production listener sends what Pulumi.{stack}.yaml declares")
    if drift is not None:
        _fail(f"drift: {drift.explanation}", EXIT_FAILED)
    if route_problems:
        _fail(f"drift: {route_problems[0]}" + (f" (and {len(route_problems) - 1} more)" if len(route_problems) > 1 else ""), EXIT_FAILED)


def _watch_status(stack: str, load_balancer_arn: str | None, interval: float, count: int | None) -> None:
    """`status --watch`: one line per round; a round that cannot read AWS says so and carries on."""
    import time

    from .bake import bake_minutes, bake_status
    from .desired import TAG_SINCE
    from .live import elbv2_client, read_live_state
    from .operations import percentages
    from .rules import COLORS

    _, cfg = _load(stack)
    arn = _lb_arn(stack, load_balancer_arn)
    minutes = bake_minutes(_obj().project_dir, _stack_file_name(stack))
    client = elbv2_client(cfg.region)
    r = cfg.rollout
    click.echo(f"watching {stack}: declared step {r.step} of {r.last_step}, {r.stable} stable; bake {minutes:g} min; Ctrl-C to stop")
    rounds = 0
    try:
        while True:
            stamp = time.strftime("%H:%M:%S", time.gmtime())
            try:
                live = read_live_state(client, arn, production_port=443 if cfg.traffic.https else 80)
                if live.production is None:
                    raise LiveStateError("no production listener found")
                w = percentages(live.production.weights)
                health = " · ".join(f"{c} {w[c]}% {_health_text(_target_health(client, live.production.target_groups.get(c)))}" for c in COLORS)
                bake = bake_status(live.production.tags.get(TAG_SINCE), minutes, time.time(), live.production.weights)
                drift = "" if all(w[c] == r.weights[c] for c in COLORS) else f"  [differs from declared step {r.step}]"
                click.echo(f"{stamp}Z  {health}  {bake.text()}{drift}")
            except LiveStateError as e:
                click.echo(f"{stamp}Z  cannot read the load balancer: {e}")
            rounds += 1
            if count is not None and rounds >= count:
                return
            time.sleep(interval)
    except KeyboardInterrupt:
        click.echo("stopped")


def _aborted(tags) -> dict | None:
    """The reflex's abort marker on the live production listener, for `status` (None when absent)."""
    from .reflex import TAG_ABORTED, parse_abort

    m = parse_abort(tags.get(TAG_ABORTED))
    if m is None:
        return None
    what = f"{m.code}{f' (e-value {m.e_value:g})' if m.e_value is not None else ''} at {m.when}" if m.code != "unknown" else f"marker {m.raw!r}"
    had = f", {m.colour} had {m.weight}%" if m.colour else ""
    text = (f"the reflex moved all traffic to stable ({what}{had}); only step 0 may be deployed until "
            "the config says step 0 and `pulumi up --refresh` clears the marker")
    return {"reason": m.code, "at": m.when, "colour": m.colour, "weight": m.weight, "eValue": m.e_value, "marker": m.raw, "text": text}


# --------------------------------------------------------------------------- gate


_CHECKS_HELP = "Checks to run (repeatable): http-probes, target-health, metrics, judge. [default: all]"


@cli.command()
@click.option("--stack", "-s", required=True, help="Stack name; reads Pulumi.<stack>.yaml.")
@click.option("--color", type=_ColorChoice(["blue", "green"]), default=None, help="Colour to judge. [default: the candidate]")
@click.option("--load-balancer-arn", default=None, metavar="ARN", help="Default: `pulumi stack output loadBalancerArn --stack S`.")
@click.option("--probe-base-url", default=None, metavar="URL", help="Probe URL base instead of the test listener, e.g. http://127.0.0.1:8080.")
@click.option("--thresholds", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="JSON file of gate thresholds (camelCase keys). [default: built-in]")
@click.option("--check", "checks", multiple=True, type=click.Choice(["http-probes", "target-health", "metrics", "judge"]), help=_CHECKS_HELP)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def gate(stack: str, color: str | None, load_balancer_arn: str | None, probe_base_url: str | None, thresholds: Path | None,
         checks: tuple[str, ...], fmt: str) -> None:
    """The health verdict the policy pack would reach: exit 0 pass, 1 fail or pending.

    Probes the colour through the test listener, reads its ALB target health and CloudWatch metrics,
    and judges it against the stable colour (the relative judge: pass, fail, or pending while the
    evidence is insufficient, with the minutes it still needs).

    Example: python -m rollout gate --stack production --color green
    """
    from .gate import CHECKS

    _, cfg = _load(stack)
    th = _thresholds(thresholds)
    color = color or cfg.rollout.candidate
    arn = _lb_arn(stack, load_balancer_arn, required=probe_base_url is None)
    live = elbv2 = None
    if arn:
        live, elbv2 = _read_live(cfg, arn)
    else:
        _warn("no load balancer ARN (no --load-balancer-arn, no Pulumi CLI): probing only; target health and metrics are skipped")
    verdict = _run_gate(cfg, color, live, arn, elbv2, probe_base_url, th, checks or CHECKS)
    if fmt == "json":
        click.echo(json.dumps({"stack": stack, **verdict.to_dict()}, indent=2))
    else:
        console = _console()
        console.print(f"[bold]bluegreen gate[/bold] · stack [cyan]{stack}[/cyan] · colour [bold]{color}[/bold] · {verdict.elapsed_s:.1f} s")
        _print_verdict(console, verdict)
        line = _judge_line(verdict)
        if line:
            click.echo(line)
    if verdict.passed:
        if fmt != "json":
            click.echo(f"PASS: {verdict.message()}")
    elif verdict.pending:
        _fail(f"PENDING: {verdict.message()}", EXIT_FAILED)
    else:
        _fail(f"FAIL: {verdict.message()}", EXIT_FAILED)


# --------------------------------------------------------------------------- config changes


def _apply(stack: str, op, *, yes: bool, dry_run: bool, config_only: bool, policy_pack: str | None) -> None:
    """Set the config, then `pulumi up` with the policy pack; restore the config if the up fails."""
    from .operations import shell_line
    from .pulumi_cli import PulumiCli, find_pulumi

    click.echo(f"{stack}: {op.name}: {op.summary}")
    up = op.commands(stack, policy_pack=policy_pack, policy_pack_config=_pack_config(policy_pack, stack))[-1]
    cmds = op.set_commands(stack) + ([] if config_only else [up])
    if dry_run:
        click.echo("dry run, nothing changed; these commands would run:")
        for argv in cmds:
            click.echo(f"  {shell_line(argv)}")
        return
    if config_only:  # only the stack file changes: no Pulumi CLI needed
        from .stack_file import set_config_path

        stack_file = _obj().project_dir / f"Pulumi.{_stack_file_name(stack)}.yaml"
        for setting in op.settings:
            set_config_path(stack_file, setting.path, setting.value)
        click.echo(f"config set in {stack_file.name}; not deployed (--config-only). Deploy with: {shell_line(up)}")
        return
    exe = find_pulumi()
    if exe is None:
        click.echo("the Pulumi CLI (`pulumi`) is not on PATH, so nothing was changed. Install it "
                   "(https://www.pulumi.com/docs/iac/download-install/) or run these commands yourself:", err=True)
        for argv in cmds:
            click.echo(f"  {shell_line(argv)}")
        sys.exit(EXIT_FAILED)
    if not yes:
        click.echo("this will run:")
        for argv in cmds:
            click.echo(f"  {shell_line(argv)}")
        try:
            ok = click.confirm("Go ahead?", default=False)
        except click.Abort:
            ok = False
        if not ok:
            _fail("not confirmed; nothing changed (pass --yes to skip this question)", EXIT_FAILED)
    pulumi = PulumiCli(exe, _obj().project_dir, echo=click.echo)
    done = []
    for setting, argv in zip(op.settings, op.set_commands(stack)):
        click.echo(f"$ {shell_line(argv)}")
        res = pulumi.run(argv)
        if res.returncode != 0:
            _restore(pulumi, stack, done)
            _fail(f"`{shell_line(argv)}` exited {res.returncode}; nothing was deployed", EXIT_FAILED)
        done.append(setting)
    if config_only:
        click.echo(f"config set in Pulumi.{stack}.yaml; not deployed (--config-only). Deploy with: {shell_line(up)}")
        return
    click.echo(f"$ {shell_line(up)}")
    res = pulumi.run(up)
    if res.returncode != 0:
        _restore(pulumi, stack, done)
        text = f"{op.name} refused: `{shell_line(up)}` exited {res.returncode} ({op.summary}); the stack file is back as it was"
        _notify("block", stack, text)
        _fail(text, EXIT_FAILED)
    click.echo(f"done: {op.summary}")
    if op.event:
        _notify(op.event, stack, op.summary)


def _pack_config(policy_pack: str | None, stack: str) -> str | None:
    """`policy/<stack>.json` when the pack has a config file for this stack."""
    if not policy_pack:
        return None
    rel = f"{policy_pack.rstrip('/')}/{_stack_file_name(stack)}.json"
    return rel if (_obj().project_dir / rel).is_file() else None


def _restore(pulumi, stack: str, done) -> None:
    from .operations import config_set_argv, shell_line

    for setting in reversed(done):
        argv = config_set_argv(stack, setting.path, setting.previous)
        click.echo(f"$ {shell_line(argv)}  # restore")
        res = pulumi.run(argv)
        if res.returncode != 0:
            _warn(f"could not restore {setting.path} to {setting.previous!r}: fix Pulumi.{stack}.yaml by hand")


def _change_options(f):
    f = click.option("--policy-pack", default="policy", show_default=True, help="Policy pack directory for `pulumi up --policy-pack`.")(f)
    f = click.option("--config-only", is_flag=True, help="Only set the config (edit Pulumi.<stack>.yaml for a commit or PR); no `pulumi up`.")(f)
    f = click.option("--dry-run", is_flag=True, help="Print the exact Pulumi commands and change nothing (exit 0).")(f)
    f = click.option(
        "--yes", "-y", is_flag=True,
        help="Do not ask for confirmation (`pulumi up` always runs with --yes: its output is streamed, not interactive).",
    )(f)
    f = click.option("--stack", "-s", required=True, help="Stack name; reads Pulumi.<stack>.yaml.")(f)
    return f


def _operation(fn, *args):
    try:
        return fn(*args)
    except TransitionError as e:
        _fail(str(e), EXIT_FAILED)


@cli.command()
@_change_options
@click.option("--wait", "wait_", is_flag=True, help="Wait out the bake time (live bluegreen:weights-since + bake-time.minutes) first.")
@click.option("--load-balancer-arn", default=None, metavar="ARN", help="For --wait. Default: `pulumi stack output loadBalancerArn --stack S`.")
def advance(stack: str, yes: bool, dry_run: bool, config_only: bool, policy_pack: str, wait_: bool, load_balancer_arn: str | None) -> None:
    """Move the candidate one step up the ladder: set bluegreen:rollout.step, then `pulumi up` with the policy pack.

    Without the Pulumi CLI on PATH, prints the exact commands and exits 1 (nothing changed). With
    --wait, first waits until the current weights have held for the pack's bake time.

    Example: python -m rollout advance --stack production --wait --yes
    """
    from . import operations

    _, cfg = _load(stack)
    op = _operation(operations.advance, cfg)
    if wait_:
        _wait_for_bake(stack, cfg, load_balancer_arn)
    _apply(stack, op, yes=yes, dry_run=dry_run, config_only=config_only, policy_pack=policy_pack)


def _wait_for_bake(stack: str, cfg, load_balancer_arn: str | None, sleep=None) -> None:
    """Sleep until the live weights have held for bake-time.minutes; exit 1 when the clock is unknown."""
    import time

    from .bake import bake_minutes, bake_status
    from .desired import TAG_SINCE

    sleep = sleep or time.sleep
    minutes = bake_minutes(_obj().project_dir, _stack_file_name(stack))
    arn = _lb_arn(stack, load_balancer_arn)
    while True:
        live, _ = _read_live(cfg, arn)
        bake = bake_status(live.production.tags.get(TAG_SINCE), minutes, time.time(), live.production.weights)
        if bake.wait_seconds is None:
            _fail(f"cannot wait out the bake: {bake.text()}", EXIT_FAILED)
        if bake.wait_seconds <= 0:
            click.echo(f"bake done: {bake.text()}")
            return
        click.echo(f"waiting: {bake.text()}")
        sleep(min(bake.wait_seconds + 1, 60))


ABORTED_KEY = "bluegreen:aborted"


def _live_abort_marker(stack: str, cfg, load_balancer_arn: str | None, *, use_pulumi: bool = True) -> str | None:
    """The reflex's abort marker on the live production listener (`DescribeTags`), or None. Faults open for
    the rollback: an ARN or a listener that cannot be read is a warning, and the rollback goes on. Without
    `use_pulumi` (--config-only) the ARN comes from --load-balancer-arn only."""
    from .live import elbv2_client, read_live_state
    from .operations import stack_output_argv
    from .pulumi_cli import PulumiCli, find_pulumi
    from .reflex import TAG_ABORTED

    try:
        arn = load_balancer_arn
        if arn is None and use_pulumi and (exe := find_pulumi()) is not None:
            arn = PulumiCli(exe, _obj().project_dir, echo=click.echo).stack_output(stack, "loadBalancerArn")
        if arn is None:
            how = "--load-balancer-arn" if not use_pulumi else f"`{' '.join(stack_output_argv(stack, 'loadBalancerArn'))}` needs the Pulumi CLI"
            _warn(f"the live abort marker was not read (no load balancer ARN: {how}); pass --aborted MARKER if the reflex rolled back")
            return None
        live = read_live_state(elbv2_client(cfg.region), arn, production_port=443 if cfg.traffic.https else 80)
        return ((live.production.tags.get(TAG_ABORTED) if live.production else None) or "").strip() or None
    except (PulumiCliError, LiveStateError) as e:
        _warn(f"the live abort marker could not be read ({e}); rolling back without {ABORTED_KEY}")
        return None


@cli.command()
@_change_options
@click.option("--to-step", type=int, default=0, show_default=True, help="Step to go back to; 0 = all traffic on the stable colour.")
@click.option("--aborted", default=None, metavar="MARKER",
              help=f"The reflex's abort marker to record as {ABORTED_KEY} with step 0 (the watcher passes it; \"\" records none). "
                   "Default: read it from the live production listener.")
@click.option("--load-balancer-arn", default=None, metavar="ARN", help="Where to read the marker. Default: `pulumi stack output loadBalancerArn`.")
def rollback(stack: str, yes: bool, dry_run: bool, config_only: bool, policy_pack: str, to_step: int, aborted: str | None,
             load_balancer_arn: str | None) -> None:
    """Move traffic back to an earlier step (default 0: all on the stable colour), then `pulumi up`.

    While the reflex's abort marker stands, step 0 also records it as bluegreen:aborted: the header route
    stays on the stable colour until `rollout release` puts a new image on the idle colour.

    Example: python -m rollout rollback --stack production --to-step 0 --yes
    """
    from . import operations

    _, cfg = _load(stack)
    r = cfg.rollout
    marker = None
    if to_step == 0:
        marker = aborted.strip() or None if aborted is not None else _live_abort_marker(stack, cfg, load_balancer_arn, use_pulumi=not config_only)
        from .config import is_abort_marker

        if marker is not None and not is_abort_marker(marker):  # the rollback goes on; a marker the program refuses is not recorded
            _warn(f"{ABORTED_KEY} not recorded: {marker!r} is not an abort marker the program accepts (1..256 letters, digits, "
                  "spaces and + = . : / @ _ -); rolling back without the header-route hold")
            marker = None
    hold = operations.Setting(ABORTED_KEY, marker, cfg.aborted or "") if marker and marker != cfg.aborted else None
    if r.step == 0 and hold is not None:  # step 0 already declared (by hand): record the hold alone
        op = operations.Operation("rollback", "rollback", r, r, (hold,), f"hold the header route on {r.stable} ({ABORTED_KEY}: {marker})")
    else:
        op = _operation(operations.rollback, cfg, to_step)
        if hold is not None:
            op = dataclasses.replace(op, settings=(*op.settings, hold),
                                     summary=f"{op.summary}; the header route stays on {r.stable} ({ABORTED_KEY}: {marker})")
    _apply(stack, op, yes=yes, dry_run=dry_run, config_only=config_only, policy_pack=policy_pack)


@cli.command()
@_change_options
def finish(stack: str, yes: bool, dry_run: bool, config_only: bool, policy_pack: str) -> None:
    """Make the candidate (at 100 %) the stable colour at step 0; traffic does not move.

    Example: python -m rollout finish --stack production --yes
    """
    from . import operations

    _, cfg = _load(stack)
    _apply(stack, _operation(operations.finish, cfg), yes=yes, dry_run=dry_run, config_only=config_only, policy_pack=policy_pack)


@cli.command()
@_change_options
@click.option("--load-balancer-arn", default=None, metavar="ARN", help="Default: `pulumi stack output loadBalancerArn --stack S`.")
@click.option("--ignore-delay", is_flag=True, help="Park now, without waiting bluegreen:idle.delayMinutes.")
def park(stack: str, yes: bool, dry_run: bool, config_only: bool, policy_pack: str, load_balancer_arn: str | None, ignore_delay: bool) -> None:
    """Apply the idle policy (bluegreen:idle.policy) to the colour without traffic, after a finish.

    Waits for bluegreen:idle.delayMinutes after the idle colour last carried traffic (the live
    listener's bluegreen:weights-since): until then it exits 1 and says how long is left.

    Example: python -m rollout park --stack production --yes
    """
    import time

    from . import operations
    from .desired import TAG_SINCE

    _, cfg = _load(stack)
    op = _operation(operations.park, cfg)
    if not ignore_delay and cfg.idle.delay_minutes:
        live, _ = _read_live(cfg, _lb_arn(stack, load_balancer_arn))
        since = live.production.tags.get(TAG_SINCE)
        left = _operation(operations.park_delay_remaining, cfg, since, time.time())
        if left > 0:
            _fail(f"park waits bluegreen:idle.delayMinutes ({cfg.idle.delay_minutes} min) after {cfg.rollout.candidate} last carried "
                  f"traffic ({since.split()[0]}): {left / 60:.0f} min left; run it again then, or pass --ignore-delay", EXIT_FAILED)
    _apply(stack, op, yes=yes, dry_run=dry_run, config_only=config_only, policy_pack=policy_pack)


@cli.command()
@_change_options
@click.option("--image", required=True, help="Container image of the new release; goes to the idle colour.")
def release(stack: str, yes: bool, dry_run: bool, config_only: bool, policy_pack: str, image: str) -> None:
    """Start a release: put a new image on the idle colour (and unpark it) at step 0; then advance.

    Example: python -m rollout release --stack production --image 123456789012.dkr.ecr.us-east-1.amazonaws.com/web:1.4.2
    """
    from . import operations

    _, cfg = _load(stack)
    op = _operation(operations.release, cfg, image)
    if cfg.aborted:  # a new release of the idle colour ends the hold of the header route on stable
        op = dataclasses.replace(op, settings=(*op.settings, operations.Setting(ABORTED_KEY, "", cfg.aborted)),
                                 summary=f"{op.summary}; clears {ABORTED_KEY} ({cfg.aborted}): the header route goes to {cfg.rollout.candidate} again, gated")
    _apply(stack, op, yes=yes, dry_run=dry_run, config_only=config_only, policy_pack=policy_pack)


# --------------------------------------------------------------------------- watcher


def _read_production(cfg, arn: str):
    """(elbv2 client, live state with a production listener or None, why not) for a scheduled round."""
    from .live import elbv2_client, read_live_state

    elbv2 = elbv2_client(cfg.region)
    try:
        live = read_live_state(elbv2, arn, production_port=443 if cfg.traffic.https else 80)
    except LiveStateError as e:
        return elbv2, None, str(e)
    if live.production is None:
        return elbv2, None, f"no production listener on {arn}"
    return elbv2, live, ""


@cli.command()
@click.option("--stack", "-s", required=True, help="Stack name; reads Pulumi.<stack>.yaml.")
@click.option("--load-balancer-arn", default=None, metavar="ARN", help="Default: `pulumi stack output loadBalancerArn --stack S`.")
@click.option("--probe-base-url", default=None, metavar="URL", help="Probe URL base instead of the test listener.")
@click.option("--thresholds", type=click.Path(dir_okay=False, path_type=Path), default=None, help="JSON file of gate thresholds.")
@click.option("--github-output", type=click.Path(dir_okay=False, path_type=Path), envvar="GITHUB_OUTPUT", default=None,
              help="Append action=, to_step=, reason= here (env GITHUB_OUTPUT).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def watch(stack: str, load_balancer_arn: str | None, probe_base_url: str | None, thresholds: Path | None,
          github_output: Path | None, fmt: str) -> None:
    """One watcher round: decide none / rollback / alert from the live weights and the candidate's gate.

    Changes nothing itself: exit 0 for none, 1 for rollback or alert (the workflow performs the rollback).

    Example: python -m rollout watch --stack production
    """
    from .reflex import TAG_ABORTED
    from .watcher import Action, decide

    _, cfg = _load(stack)
    th = _thresholds(thresholds)
    r = cfg.rollout
    arn = _lb_arn(stack, load_balancer_arn)
    elbv2, live, problem = _read_production(cfg, arn)
    verdict = None
    aborted = live.production.tags.get(TAG_ABORTED) if live else None
    if live is not None and r.step > 0 and not aborted:  # the reflex already rolled back: reconcile, no gate
        verdict = _run_gate(cfg, r.candidate, live, arn, elbv2, probe_base_url, th, ("http-probes", "target-health", "metrics", "judge"))
    decision = decide(
        stack, r,
        live.production.weights if live else None,
        verdict.passed if verdict else None,
        gate_message=(verdict.message() if verdict else problem),
        live_stable=live.production.tags.get("bluegreen:stable") if live else None,
        gate_pending=bool(verdict and verdict.pending),
        aborted=aborted,
        held=cfg.aborted is not None,
    )
    # The alert or rollback notice carries its cause (the gate's verdict, or why AWS could not be read).
    cause = verdict.message() if verdict else problem
    if cause and cause not in decision.reason:
        decision = dataclasses.replace(decision, reason=f"{decision.reason}. Cause: {cause}")
    if github_output:
        with open(github_output, "a", encoding="utf-8") as fh:
            fh.write(f"action={decision.action.value}\n")
            fh.write(f"to_step={'' if decision.to_step is None else decision.to_step}\n")
            fh.write(f"reason={' '.join(decision.reason.split())}\n")
            fh.write(f"aborted={' '.join((aborted or '').split())}\n")  # the marker `rollback --aborted` records with step 0
    if fmt == "json":
        click.echo(json.dumps({"stack": stack, **decision.to_dict(), "gate": verdict.to_dict() if verdict else None}, indent=2))
    else:
        if verdict:
            _print_verdict(_console(), verdict)
            line = _judge_line(verdict)
            if line:
                click.echo(line)
        click.echo(f"{decision.action.value}: {decision.reason}")
    if decision.action is Action.ROLLBACK:
        _notify("rollback", stack, decision.reason)
        sys.exit(EXIT_FAILED)
    if decision.action is Action.ALERT:
        _notify("block", stack, decision.reason)
        sys.exit(EXIT_FAILED)


# --------------------------------------------------------------------------- autopilot


@cli.command()
@click.option("--stack", "-s", required=True, help="Stack name; reads Pulumi.<stack>.yaml.")
@click.option("--load-balancer-arn", default=None, metavar="ARN", help="Default: `pulumi stack output loadBalancerArn --stack S`.")
@click.option("--probe-base-url", default=None, metavar="URL", help="Probe URL base instead of the test listener.")
@click.option("--thresholds", type=click.Path(dir_okay=False, path_type=Path), default=None, help="JSON file of gate thresholds.")
@click.option("--commit", "do_commit", is_flag=True, help="On advance, set the next step in Pulumi.<stack>.yaml and git commit it.")
@click.option("--push", "remote", default=None, metavar="REMOTE", help="Then push the commit to REMOTE as a fast-forward (implies --commit).")
@click.option("--branch", default="main", show_default=True, help="The branch --push updates.")
@click.option("--skip-ci", is_flag=True, help="End the commit subject with [skip ci] (the workflow deploys the commit itself).")
@click.option("--github-output", type=click.Path(dir_okay=False, path_type=Path), envvar="GITHUB_OUTPUT", default=None,
              help="Append action=, to_step=, reason=, commit= here (env GITHUB_OUTPUT).")
def autopilot(stack: str, load_balancer_arn: str | None, probe_base_url: str | None, thresholds: Path | None, do_commit: bool,
              remote: str | None, branch: str, skip_ci: bool, github_output: Path | None) -> None:
    """One autopilot round: advance one step when the judge says pass and the bake has elapsed.

    Off unless bluegreen:autopilot.enabled. Decides none / wait / advance / approval / stop
    (rollout.autopilot.decide); with --commit (or --push) an advance edits the stack file and commits
    it, and the normal deploy runs it. Exit 0 for none, wait, advance and approval; 1 for stop (a
    human should look) or a failed commit or push.

    Example: python -m rollout autopilot --stack production --push origin
    """
    import time as _time

    from .autopilot import Action, decide
    from .bake import bake_minutes, bake_status
    from .desired import TAG_SINCE
    from .gitops import GitError, commit_paths, last_change, push_fast_forward
    from .reflex import TAG_ABORTED

    _, cfg = _load(stack)
    r, ap = cfg.rollout, cfg.autopilot
    live, problem, verdict = None, "", None
    if ap.enabled and 0 < r.step < r.last_step:
        arn = _lb_arn(stack, load_balancer_arn)
        elbv2, live, problem = _read_production(cfg, arn)
        if live is not None and not live.production.tags.get(TAG_ABORTED):
            verdict = _run_gate(cfg, r.candidate, live, arn, elbv2, probe_base_url, _thresholds(thresholds),
                                ("http-probes", "target-health", "metrics", "judge"))
    prod = live.production if live else None
    minimum = ap.min_bake_minutes if ap.min_bake_minutes is not None else bake_minutes(_obj().project_dir, _stack_file_name(stack))
    held = bake_status(prod.tags.get(TAG_SINCE), minimum, _time.time(), prod.weights).held_seconds if prod else None
    changed = last_change(_obj().project_dir, _obj().project_dir / f"Pulumi.{_stack_file_name(stack)}.yaml")
    decision = decide(
        stack, r, ap,
        live_weights=prod.weights if prod else None,
        baked_minutes=None if held is None else held / 60,
        min_bake_minutes=minimum,
        verdict=(verdict.judge or {}).get("verdict") if verdict else None,
        gate_passed=verdict.passed if verdict else None,
        gate_message=verdict.message() if verdict else problem,
        aborted=bool(prod and prod.tags.get(TAG_ABORTED)),
        declared_minutes=None if changed is None else (_time.time() - changed) / 60,
    )
    sha = None
    failed = ""
    if decision.action is Action.ADVANCE and (do_commit or remote):
        from .stack_file import set_config_path

        path = _obj().project_dir / f"Pulumi.{_stack_file_name(stack)}.yaml"
        try:
            set_config_path(path, "bluegreen:rollout.step", decision.to_step)
            sha = commit_paths(_obj().project_dir, [path], f"autopilot: advance {stack} to step {decision.to_step} "
                               f"({r.candidate} {r.steps[decision.to_step - 1]}%){' [skip ci]' if skip_ci else ''}", decision.reason)
            if sha and remote:
                push_fast_forward(_obj().project_dir, remote, branch)
        except (GitError, ConfigError, OSError) as e:
            failed = str(e)
    if github_output:
        with open(github_output, "a", encoding="utf-8") as fh:
            fh.write(f"action={decision.action.value}\n")
            fh.write(f"to_step={'' if decision.to_step is None else decision.to_step}\n")
            fh.write(f"reason={' '.join(decision.reason.split())}\n")
            fh.write(f"commit={sha or ''}\n")
    if verdict:
        line = _judge_line(verdict)
        if line:
            click.echo(line)
    click.echo(f"{decision.action.value}: {decision.reason}")
    if sha:
        click.echo(f"committed {sha[:12]}" + (f" and pushed to {remote}/{branch}" if remote and not failed else ""))
    if failed:
        _notify("block", stack, f"autopilot could not commit step {decision.to_step}: {failed}")
        _fail(f"autopilot could not commit or push step {decision.to_step}: {failed}", EXIT_FAILED)
    # No notice for an approval here: this runs every watcher round; the approval job notifies once,
    # when it opens the step's pull request (.github/workflows/watch.yml).
    if decision.action is Action.STOP:
        _notify("block", stack, decision.reason)
        sys.exit(EXIT_FAILED)


# --------------------------------------------------------------------------- preflight


@cli.command()
@click.option("--stack", "-s", required=True, help="Stack name; reads Pulumi.<stack>.yaml.")
def preflight(stack: str) -> None:
    """Check what the stack file points at in AWS before the first `up` (read-only): the access-logs
    bucket's region and log-delivery policy, and that private task subnets reach a NAT or VPC endpoints.

    Exit 0 when nothing is wrong, 1 with one line per problem.

    Example: python -m rollout preflight --stack production
    """
    import boto3

    from .live import client_config
    from .preflight import access_logs_problems, private_subnet_problems

    _, cfg = _load(stack)
    region = cfg.region or "us-east-1"
    problems: list[str] = []
    checked: list[str] = []
    try:
        if cfg.traffic.access_logs_bucket:
            account = boto3.client("sts", region_name=region, config=client_config()).get_caller_identity()["Account"]
            s3 = boto3.client("s3", region_name=region, config=client_config())
            problems += access_logs_problems(s3, cfg.traffic.access_logs_bucket, cfg.traffic.access_logs_prefix, region, account)
            checked.append(f"access-logs bucket {cfg.traffic.access_logs_bucket}")
        if not cfg.network.create and cfg.network.private_subnet_ids:
            ec2 = boto3.client("ec2", region_name=region, config=client_config())
            problems += private_subnet_problems(ec2, cfg.network.vpc_id, cfg.network.private_subnet_ids, region)
            checked.append(f"egress of {len(cfg.network.private_subnet_ids)} private subnet(s)")
    except Exception as e:  # noqa: BLE001 - no credentials, access denied, throttling: one line, exit 1
        from .live import aws_fault_reason

        _fail(f"preflight could not read AWS: {aws_fault_reason(e)}", EXIT_FAILED)
    for p in problems:
        click.echo(f"problem: {p}")
    if problems:
        sys.exit(EXIT_FAILED)
    click.echo(f"{stack}: preflight ok ({', '.join(checked) or 'nothing in the stack file needs checking'})")


# --------------------------------------------------------------------------- deploy (CI)


@cli.command()
@click.option("--stack", "-s", required=True, help="Stack name; reads Pulumi.<stack>.yaml.")
@click.option("--expect-commit", default=None, metavar="SHA",
              help="Deploy only if this commit is still the branch's head (fetched from the remote before each attempt).")
@click.option("--branch", default="main", show_default=True, help="Branch whose head the commit must be.")
@click.option("--remote", default="origin", show_default=True)
@click.option("--policy-pack", default="policy", show_default=True, help="Policy pack directory ('' for none).")
@click.option("--lock-retries", type=click.IntRange(1, 100), default=6, show_default=True,
              help="Attempts per command while another update holds the stack's lock.")
@click.option("--lock-wait", type=click.FloatRange(0, 3600), default=30.0, show_default=True, help="Seconds between those attempts.")
@click.option("--follow-rollback", is_flag=True,
              help="When the branch moved on by a rollback only (the stack file's step set to 0, nothing else), deploy that head instead of refusing.")
def deploy(stack: str, expect_commit: str | None, branch: str, remote: str, policy_pack: str, lock_retries: int, lock_wait: float,
           follow_rollback: bool = False) -> None:
    """Deploy the stack as CI does: preview with the pack, `up`, then `preview --expect-no-changes`.

    Refuses (exit 1) when --expect-commit is no longer the branch's head; retries while another update
    holds the stack's lock. Never `up --skip-preview`.

    Example: python -m rollout deploy --stack production --expect-commit "$GITHUB_SHA"
    """
    from .deploy import StaleCommitError, check_commit_is_head, deploy_plan, deploy_stack
    from .pulumi_cli import PulumiCli, find_pulumi

    _load(stack)  # a broken stack file is exit 2 before anything runs
    root = _obj().project_dir

    expected = [expect_commit]

    def still_head() -> None:
        if expected[0]:
            try:
                check_commit_is_head(root, expected[0], branch, remote)
            except StaleCommitError as stale:
                if not follow_rollback:
                    raise
                expected[0] = _follow_rollback(root, stack, expected[0], branch, remote, stale)

    still_head()
    plan = deploy_plan(stack, policy_pack or None, _pack_config(policy_pack or None, stack))
    exe = find_pulumi()
    if exe is None:
        _fail("the Pulumi CLI (`pulumi`) is not on PATH; nothing was deployed", EXIT_FAILED)
    pulumi = PulumiCli(exe, root, echo=click.echo)
    deploy_stack(pulumi.run, plan, attempts=lock_retries, wait_seconds=lock_wait, before_each=still_head, echo=click.echo)
    click.echo(f"{stack}: deployed and verified (no changes left)")


def _follow_rollback(root: Path, stack: str, commit: str, branch: str, remote: str, stale: Exception) -> str:
    """The branch's head to deploy in place of `commit` when it adds only a rollback (its stack file is then
    checked out here); otherwise `stale` again, with the reason."""
    from .deploy import StaleCommitError, main_head
    from .gitops import take_rollback

    head = main_head(root, branch, remote)
    why = take_rollback(root, commit, f"refs/remotes/{remote}/{branch}", root / f"Pulumi.{_stack_file_name(stack)}.yaml")
    if why is not None:
        raise StaleCommitError(f"{stale}; not a rollback only: {why}")
    click.echo(f"{stack}: {branch} moved on to {head[:12]} by a rollback only; deploying that (the stack file at step 0)")
    return head


# --------------------------------------------------------------------------- notify


@cli.command()
@click.option("--stack", "-s", required=True, help="Stack name; reads Pulumi.<stack>.yaml for the default message.")
@click.option("--event", type=click.Choice(["promotion", "block", "rollback"]), required=True)
@click.argument("message", nargs=-1)
def notify(stack: str, event: str, message: tuple[str, ...]) -> None:
    """Send a notice to the webhook (for workflows); off when no URL is set, never fails on delivery.

    The default message is the stack's declared step and weights.

    Example: python -m rollout notify --stack production --event promotion
    """
    from .notify import webhook_url
    from .rules import describe_weights

    if not webhook_url(_obj().webhook_url):
        click.echo("notifications are off (set BLUEGREEN_WEBHOOK_URL or --webhook-url)")
        return
    if message:
        text = " ".join(message)
    else:
        _, cfg = _load(stack)
        r = cfg.rollout
        text = f"step {r.step} of {r.last_step}, {r.stable} stable: {describe_weights(r.weights)}"
    _notify(event, stack, text)


def main() -> None:
    """`python -m rollout` and the installed `bluegreen` command (pyproject.toml `[project.scripts]`)."""
    prog = "bluegreen" if Path(sys.argv[0]).name == "bluegreen" else "python -m rollout"
    cli(prog_name=prog)
