"""The never-raise guard: every policy of this pack is wired through `resource_policy`, so no check
can raise out of the SDK (invariant 8, docs/safety-model.md)."""

from __future__ import annotations

import os
import sys
import sysconfig
import traceback
from typing import Any, Callable

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity
from pulumi_policy.proxy import UnknownValueError

import pack_config

try:  # private in pulumi_policy; raised by args.not_applicable()
    from pulumi_policy.policy import _NotApplicableError
except Exception:  # pragma: no cover
    class _NotApplicableError(Exception):  # type: ignore[no-redef]
        pass

__all__ = ["guarded", "resource_policy"]

_PREVIEW_NOTE = (
    "skipped, not failed: this is a preview of a resource whose inputs are not known yet (a first "
    "deploy); there is no live traffic to protect, and the policy runs for real during `pulumi up`"
)


# --------------------------------------------------------------------------- never raise


def guarded(name: str, check: Callable[[ResourceValidationArgs, ReportViolation], None]):
    """Wrap a policy check so that it never raises.

    * An unknown value (preview of a first deploy) propagates as UnknownValueError, which the SDK
      reports at ADVISORY level: a clear skip, never a false block.
    * Any other exception becomes a violation that names it (fail closed, and visible) -- except on
      a rollback (`RouteView.passes_unconditionally`): a rollback is never refused (invariant 5), so a
      fault there is written to the pack's stderr, which the engine shows, and the update goes on.
    """

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        try:
            check(args, report_violation)
        except UnknownValueError as e:
            e.message = f"{e.message}; {name} {_PREVIEW_NOTE}"
            raise
        except _NotApplicableError:
            raise
        except Exception as e:  # noqa: BLE001 - the whole point: nothing escapes
            where = _where(e)
            if _is_rollback(args):
                print(f"bluegreen pack: {name} failed on a rollback, which passes anyway: {type(e).__name__}: {_short(e)}{where}",
                      file=sys.stderr, flush=True)
                return
            report_violation(
                f"{name} could not finish its check, so it fails closed: unexpected "
                f"{type(e).__name__}: {_short(e)}{where}"
            )

    validate.__name__ = f"validate_{name.replace('-', '_')}"
    return validate


def _where(e: BaseException) -> str:
    """' at <file>:<line>' of the innermost frame in this project's code (the pack or `rollout/`), not in the
    standard library or an installed package, where a fault in parsing would otherwise point."""
    frames = traceback.extract_tb(e.__traceback__)
    if not frames:
        return ""
    ours = [f for f in frames if not any(f.filename.startswith(p) for p in _LIBRARY_PATHS)]
    frame = (ours or frames)[-1]
    return f" at {frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}"


_LIBRARY_PATHS = tuple(
    {
        form
        for path in (sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib"))
        if path
        for form in (path.rstrip(os.sep) + os.sep, os.path.realpath(path) + os.sep)
    }
)


def _is_rollback(args: ResourceValidationArgs) -> bool:
    """Whether this update only returns traffic to the live-recorded stable target group (never raises). A listener
    or rule answers from its own route view; a Kubernetes object -- judged after its listener, in the same process
    (`rollback_verdicts`) -- from this run's verdict on the production listener."""
    try:
        from routes import route_view

        view = route_view(args)
        if view is not None:
            return view.passes_unconditionally()
        if args.resource_type.startswith("kubernetes:"):
            import rollback_verdicts

            return rollback_verdicts.rolled_back_in_run()
        return False
    except Exception:  # noqa: BLE001 - cannot tell: not a rollback
        return False


def resource_policy(
    name: str, description: str, check: Callable[[ResourceValidationArgs, ReportViolation], None], severity: Severity
) -> ResourceValidationPolicy:
    """A policy of this pack, wired the one way: its check `guarded` (it never raises), its
    enforcement level and config schema from `pack_config`, where they are set for every policy."""
    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=guarded(name, check),
        enforcement_level=pack_config.level(name),
        config_schema=pack_config.schema(name),
        severity=severity,
    )


def _short(value: Any, limit: int = 300) -> str:
    s = " ".join(str(value).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


