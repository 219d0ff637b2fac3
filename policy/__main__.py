"""The `bluegreen` policy pack: the engine starts it as `python <pack dir>`.

`rollout/` (the rules, live reads and health gate the pack shares with the program and the CLI)
is found next to this file when the pack was bundled for publishing (`python policy/bundle.py`),
else in the repository root when the pack runs from the repo (`--policy-pack policy`).
Nothing may be printed to stdout before PolicyPack prints its gRPC port.
"""

from __future__ import annotations

import os
import sys

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
from workload import workload_break_glass, workload_frozen_while_live, workload_steady_during_shift  # noqa: E402
from traffic import bake_time, live_state_readable, migration_guard, one_step_at_a_time, valid_weights  # noqa: E402

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
