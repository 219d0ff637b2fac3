"""`python -m rollout`: the operator's commands. Thin: every decision lives in the library."""

from __future__ import annotations

import sys

import click
from rich.console import Console

from .errors import ConfigError, RolloutError

__all__ = ["main", "cli"]

EXIT_FAILED = 1  # the gate failed, drift found, or a command refused
EXIT_USAGE = 2  # bad input: config or arguments


def _console() -> Console:
    return Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 160)


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """bluegreen: progressive blue/green delivery on AWS, one traffic step per `pulumi up`."""


@cli.command()
@click.option("--stack", "-s", required=True, help="Stack name; reads Pulumi.<stack>.yaml.")
@click.option("--to-step", type=int, default=None, help="Simulate only the move to this step (default: every remaining step, then finish).")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True)
def plan(stack: str, to_step: int | None, fmt: str) -> None:
    """Show what each remaining step changes: offline, no cloud credentials, no Pulumi CLI.

    Runs the real program under Pulumi's mock runtime with the real stack file, once per step.

    Example: python -m rollout plan --stack production
    """
    from .plan import build_plan
    from .render import render_json, render_markdown, render_text

    try:
        result = build_plan(stack, to_step=to_step)
    except FileNotFoundError as e:
        _fail(str(e), EXIT_USAGE)
    except ConfigError as e:
        _fail(f"invalid stack config in Pulumi.{stack}.yaml: {e}", EXIT_USAGE)
    except RolloutError as e:
        _fail(str(e), EXIT_FAILED)
    if fmt == "json":
        click.echo(render_json(result))
    elif fmt == "markdown":
        click.echo(render_markdown(result))
    else:
        render_text(result, _console())


def main() -> None:
    cli(prog_name="python -m rollout")
