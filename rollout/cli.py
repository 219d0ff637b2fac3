"""`python -m rollout`: the operator's commands. Thin: every decision lives in the library.

Exit codes (every command): 0 ok; 1 the gate failed, drift found, the live state could not be
read, a move the rollout rules refuse, or a Pulumi command failed or could not run; 2 usage or
config error (bad arguments, invalid stack file, unreadable thresholds file).
"""

from __future__ import annotations

import json
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


class _Obj:
    def __init__(self, project_dir: Path, webhook_url: str | None):
        self.project_dir = project_dir
        self.webhook_url = webhook_url


def _default_project_dir() -> Path:
    from .simulate import ROOT

    return ROOT


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


def _load(stack: str):
    """(raw config map, validated StackConfig) of Pulumi.<stack>.yaml; exit 2 when missing or invalid."""
    from .config import parse_stack_config
    from .simulate import load_stack_file

    root = _obj().project_dir
    try:
        raw = load_stack_file(stack, root)
    except FileNotFoundError as e:
        _fail(str(e), EXIT_USAGE)
    except Exception as e:  # YAML syntax
        _fail(f"cannot read Pulumi.{stack}.yaml: {' '.join(str(e).split())}", EXIT_USAGE)
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

    path = (live.health_paths.get(color) if live else None) or cfg.service.health_path
    probe_url = None
    if probe_base_url:
        probe_url = probe_base_url.rstrip("/") + path
    elif live and live.test and color in live.test.weights and live.dns_name:
        scheme = "https" if live.test.protocol.upper() == "HTTPS" else "http"
        probe_url = f"{scheme}://{live.dns_name}:{live.test.port}{path}"
    tg = None
    if live:
        tg = (live.production.target_groups.get(color) if live.production else None) or (live.test.target_groups.get(color) if live.test else None)
    target = GateTarget(color, probe_url=probe_url, target_group_arn=tg, load_balancer_arn=lb_arn if tg else None)
    return run_gate(target, thresholds, elbv2=elbv2, cloudwatch=cloudwatch_client(cfg.region) if tg else None, checks=checks)


def _print_verdict(console: Console, verdict) -> None:
    table = Table(show_lines=False)
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail")
    for c in verdict.checks:
        mark = "skipped" if c.data.get("skipped") else ("[green]pass[/green]" if c.ok else "[red]FAIL[/red]")
        table.add_row(c.name, mark, c.reason)
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
    from .simulate import ROOT, load_stack_file

    project_dir = _obj().project_dir
    pack = None
    if not no_policy:  # the pack starts (~1 s), then judges each step, while the program runs for the next
        pack_config = next((p for p in (project_dir / "policy" / f"{stack}.json", ROOT / "policy" / f"{stack}.json") if p.is_file()), None)
        pack = start_offline_pack(stack, pack_dir=ROOT / "policy", pack_config=pack_config)
        click.get_current_context().call_on_close(pack.close)
    try:
        result = build_plan(stack, to_step=to_step, config=load_stack_file(stack, project_dir), on_row=pack.submit if pack else None)
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
        click.echo(render_markdown(result))
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
def status(stack: str, load_balancer_arn: str | None, fmt: str) -> None:
    """Live weights and target health per colour, and drift from the declared step (exit 1 on drift).

    Reads the production listener and target health from AWS (read-only elbv2 calls).

    Example: python -m rollout status --stack production
    """
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

    if fmt == "json":
        click.echo(json.dumps({
            "stack": stack,
            "loadBalancerArn": arn,
            "dnsName": live.dns_name,
            "declared": {"stable": r.stable, "candidate": r.candidate, "step": r.step, "steps": list(r.steps), "weights": r.weights},
            "live": {"weights": live_w, "stable": live_stable, "listenerArn": live.production.arn},
            "health": health,
            "drift": None if drift is None else {"kind": drift.kind, "explanation": drift.explanation},
        }, indent=2))
    else:
        console = _console()
        console.print(f"[bold]bluegreen status[/bold] · stack [cyan]{stack}[/cyan] · {cfg.region or 'default region'}")
        console.print(f"load balancer  {arn}" + (f" ({live.dns_name})" if live.dns_name else ""))
        console.print(f"declared       step {r.step} of {r.last_step}, {r.stable} stable, {r.candidate} candidate (steps {list(r.steps)})")
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
        if drift is None:
            console.print(f"[green]in sync[/green]: the production listener sends what Pulumi.{stack}.yaml declares")
    if drift is not None:
        _fail(f"drift: {drift.explanation}", EXIT_FAILED)


# --------------------------------------------------------------------------- gate


_CHECKS_HELP = "Checks to run (repeatable): http-probes, target-health, metrics. [default: all]"


@cli.command()
@click.option("--stack", "-s", required=True, help="Stack name; reads Pulumi.<stack>.yaml.")
@click.option("--color", type=click.Choice(["blue", "green"]), default=None, help="Colour to judge. [default: the candidate]")
@click.option("--load-balancer-arn", default=None, metavar="ARN", help="Default: `pulumi stack output loadBalancerArn --stack S`.")
@click.option("--probe-base-url", default=None, metavar="URL", help="Probe URL base instead of the test listener, e.g. http://127.0.0.1:8080.")
@click.option("--thresholds", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="JSON file of gate thresholds (camelCase keys). [default: built-in]")
@click.option("--check", "checks", multiple=True, type=click.Choice(["http-probes", "target-health", "metrics"]), help=_CHECKS_HELP)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def gate(stack: str, color: str | None, load_balancer_arn: str | None, probe_base_url: str | None, thresholds: Path | None,
         checks: tuple[str, ...], fmt: str) -> None:
    """The health verdict the policy pack would reach: exit 0 pass, 1 fail.

    Probes the colour through the test listener, reads its ALB target health and CloudWatch metrics.

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
    if verdict.passed:
        if fmt != "json":
            click.echo(f"PASS: {verdict.message()}")
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
    rel = f"{policy_pack.rstrip('/')}/{stack}.json"
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
def advance(stack: str, yes: bool, dry_run: bool, config_only: bool, policy_pack: str) -> None:
    """Move the candidate one step up the ladder: set bluegreen:rollout.step, then `pulumi up` with the policy pack.

    Without the Pulumi CLI on PATH, prints the exact commands and exits 1 (nothing changed).

    Example: python -m rollout advance --stack production --yes
    """
    from . import operations

    _, cfg = _load(stack)
    _apply(stack, _operation(operations.advance, cfg), yes=yes, dry_run=dry_run, config_only=config_only, policy_pack=policy_pack)


@cli.command()
@_change_options
@click.option("--to-step", type=int, default=0, show_default=True, help="Step to go back to; 0 = all traffic on the stable colour.")
def rollback(stack: str, yes: bool, dry_run: bool, config_only: bool, policy_pack: str, to_step: int) -> None:
    """Move traffic back to an earlier step (default 0: all on the stable colour), then `pulumi up`.

    Example: python -m rollout rollback --stack production --to-step 0 --yes
    """
    from . import operations

    _, cfg = _load(stack)
    _apply(stack, _operation(operations.rollback, cfg, to_step), yes=yes, dry_run=dry_run, config_only=config_only, policy_pack=policy_pack)


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
def park(stack: str, yes: bool, dry_run: bool, config_only: bool, policy_pack: str) -> None:
    """Apply the idle policy (bluegreen:idle.policy) to the colour without traffic, after a finish.

    Example: python -m rollout park --stack production --yes
    """
    from . import operations

    _, cfg = _load(stack)
    _apply(stack, _operation(operations.park, cfg), yes=yes, dry_run=dry_run, config_only=config_only, policy_pack=policy_pack)


@cli.command()
@_change_options
@click.option("--image", required=True, help="Container image of the new release; goes to the idle colour.")
def release(stack: str, yes: bool, dry_run: bool, config_only: bool, policy_pack: str, image: str) -> None:
    """Start a release: put a new image on the idle colour (and unpark it) at step 0; then advance.

    Example: python -m rollout release --stack production --image 123456789012.dkr.ecr.us-east-1.amazonaws.com/web:1.4.2
    """
    from . import operations

    _, cfg = _load(stack)
    _apply(stack, _operation(operations.release, cfg, image), yes=yes, dry_run=dry_run, config_only=config_only, policy_pack=policy_pack)


# --------------------------------------------------------------------------- watcher


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
    from .watcher import Action, decide

    _, cfg = _load(stack)
    th = _thresholds(thresholds)
    r = cfg.rollout
    arn = _lb_arn(stack, load_balancer_arn)
    from .live import elbv2_client, read_live_state

    elbv2 = elbv2_client(cfg.region)
    live = None
    problem = ""
    try:
        live = read_live_state(elbv2, arn, production_port=443 if cfg.traffic.https else 80)
        if live.production is None:
            problem, live = f"no production listener on {arn}", None
    except LiveStateError as e:
        problem = str(e)
    verdict = None
    if live is not None and r.step > 0:
        verdict = _run_gate(cfg, r.candidate, live, arn, elbv2, probe_base_url, th, ("http-probes", "target-health", "metrics"))
    decision = decide(
        stack, r,
        live.production.weights if live else None,
        verdict.passed if verdict else None,
        gate_message=(verdict.message() if verdict else problem),
        live_stable=live.production.tags.get("bluegreen:stable") if live else None,
    )
    if github_output:
        with open(github_output, "a", encoding="utf-8") as fh:
            fh.write(f"action={decision.action.value}\n")
            fh.write(f"to_step={'' if decision.to_step is None else decision.to_step}\n")
            fh.write(f"reason={' '.join(decision.reason.split())}\n")
    if fmt == "json":
        click.echo(json.dumps({"stack": stack, **decision.to_dict(), "gate": verdict.to_dict() if verdict else None}, indent=2))
    else:
        if verdict:
            _print_verdict(_console(), verdict)
        click.echo(f"{decision.action.value}: {decision.reason}")
    if decision.action is Action.ROLLBACK:
        _notify("rollback", stack, decision.reason)
        sys.exit(EXIT_FAILED)
    if decision.action is Action.ALERT:
        _notify("block", stack, decision.reason)
        sys.exit(EXIT_FAILED)


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
    cli(prog_name="python -m rollout")
