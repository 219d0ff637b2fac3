"""The `bluegreen` policy pack: the engine starts it as `python <pack dir>`.

`rollout/` (the rules, live reads and health gate the pack shares with the program and the CLI)
is found next to this file when the pack was bundled for publishing (`python policy/bundle.py`),
else in the repository root when the pack runs from the repo (`--policy-pack policy`).
Nothing may be printed to stdout before PolicyPack prints its gRPC port.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys

# The imports below build ~50,000 long-lived objects; the cyclic collector would walk them all
# several times while they load, and again on every full collection while the pack serves. It is
# off until they are loaded, then they are frozen (never walked again) and it is back on for what
# the pack allocates per call.
gc.disable()

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(_HERE)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
if not os.path.isfile(os.path.join(_HERE, "rollout", "rules.py")) and os.path.isfile(
    os.path.join(_REPO, "rollout", "rules.py")
):
    sys.path.insert(1, _REPO)  # after the pack dir, so the pack's own modules win

from rollout.analyzer import OFFLINE_TOKEN_ENV, refuse_non_loopback  # noqa: E402

if os.environ.get(OFFLINE_TOKEN_ENV):
    # Started by `python -m rollout plan` to judge simulated steps: no packet may leave the machine.
    refuse_non_loopback()

from pulumi_policy import PolicyPack  # noqa: E402

import pack_config  # noqa: E402
from abort import abort_marker  # noqa: E402
from health import healthy_promotion  # noqa: E402
from security import (  # noqa: E402
    alb_access_logs,
    alb_deletion_protection,
    alb_drop_invalid_header_fields,
    alb_https_only,
    alb_tls_policy,
)
from plain_secrets import no_plain_secrets  # noqa: E402
from properties_once import PropertiesOncePerCall  # noqa: E402
from workload import workload_break_glass, workload_frozen_while_live, workload_steady_during_shift  # noqa: E402
from identity import colour_identity  # noqa: E402
from routes import analyze_call  # noqa: E402
from traffic import bake_time, live_state_readable, migration_guard, one_step_at_a_time, stable_by_finish, valid_weights  # noqa: E402


def _finite(value) -> None:
    """Replace NaN/±Inf numbers in a protobuf Struct/ListValue, in place, by the strings "NaN",
    "Infinity", "-Infinity": the SDK's MessageToDict raises on them before any policy runs, which the
    engine would see as a gRPC error. As strings they are simply invalid values a policy refuses."""
    import math

    items = value.fields.values() if hasattr(value, "fields") else value.values
    for v in items:
        kind = v.WhichOneof("kind")
        if kind == "number_value" and not math.isfinite(v.number_value):
            n = v.number_value
            v.string_value = "NaN" if math.isnan(n) else ("Infinity" if n > 0 else "-Infinity")
        elif kind == "struct_value":
            _finite(v.struct_value)
        elif kind == "list_value":
            _finite(v.list_value)


def _one_live_read_per_analyze_call() -> None:
    """Scope the route views (and their one read of AWS) to one Analyze call (docs/safety-model.md, invariant 8).

    The SDK builds fresh arguments for each policy of a call, so the call itself is the only safe
    boundary: wrap the SDK servicer's Analyze. Without the hook (another SDK version) each policy
    reads AWS itself: slower, never stale.
    """
    from pulumi_policy import policy as sdk

    servicer = getattr(sdk, "_PolicyAnalyzerServicer", None)
    original = getattr(servicer, "Analyze", None)
    if servicer is None or original is None:
        return

    once = PropertiesOncePerCall.install(sdk)  # None with an SDK that has no such hook: it converts per policy

    def analyze(self, request, context):
        _finite(request.properties)
        with analyze_call(), (once.call(request.properties) if once is not None else contextlib.nullcontext()):
            return original(self, request, context)

    servicer.Analyze = analyze
    original_stack = getattr(servicer, "AnalyzeStack", None)
    if original_stack is not None:

        def analyze_stack(self, request, context):
            for resource in request.resources:
                _finite(resource.properties)
            return original_stack(self, request, context)

        servicer.AnalyzeStack = analyze_stack


_one_live_read_per_analyze_call()

gc.freeze()
gc.enable()

PolicyPack(
    name=pack_config.PACK_NAME,
    description=(
        "Guards progressive blue/green traffic shifts on an AWS ALB (healthy promotion, one step at a time, "
        "bake time, valid weights, migration guard) and an ALB security baseline."
    ),
    display_name="bluegreen",
    provider="aws",
    tags=["aws", "alb", "blue-green", "progressive-delivery"],
    policies=[
        healthy_promotion(),
        one_step_at_a_time(),
        bake_time(),
        valid_weights(),
        stable_by_finish(),
        colour_identity(),
        migration_guard(),
        abort_marker(),
        live_state_readable(),
        workload_frozen_while_live(),
        workload_steady_during_shift(),
        workload_break_glass(),
        no_plain_secrets(),
        alb_https_only(),
        alb_tls_policy(),
        alb_deletion_protection(),
        alb_drop_invalid_header_fields(),
        alb_access_logs(),
    ],
)
