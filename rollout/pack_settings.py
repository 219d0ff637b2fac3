"""What the program reads from the policy pack's config file of its stack (`policy/<stack>.json`, the file every
`pulumi up` of this project hands the pack with `--policy-pack-config`: `rollout` commands, the workflows and the
Pulumi Deployments settings all name it).

One setting lives there and is needed in AWS too: the health gate's `slowRequestMs` (`healthy-promotion`). The
reflex function judges the same kinds of bad events as the gate, so the program passes it on. Reading the pack's
own file keeps one source: a second key in the stack config could disagree with what the gate judges.

Pure, standard library only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rollout.errors import ConfigError

__all__ = ["GATE_POLICY", "pack_config_path", "gate_slow_request_ms"]

GATE_POLICY = "healthy-promotion"


def pack_config_path(policy_dir: Path, stack: str) -> Path:
    """`policy/<stack>.json`, named after the stack alone (`my-org/production` -> production.json)."""
    return policy_dir / f"{stack.rsplit('/', 1)[-1]}.json"


def gate_slow_request_ms(policy_dir: Path, stack: str) -> float | None:
    """The gate's `slowRequestMs` for `stack`, None when the file, the policy's settings or the key are absent
    (the gate judges errors only). ConfigError names the file and key when the value is one the gate refuses."""
    path = pack_config_path(policy_dir, stack)
    where = f"{policy_dir.name}/{path.name}"
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ConfigError(where, f"cannot be read: {e.strerror or e}") from None
    try:
        doc: Any = json.loads(text)
    except ValueError as e:
        raise ConfigError(where, f"is not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise ConfigError(where, f"must be a JSON object of policy settings, got {type(doc).__name__}")
    settings = doc.get(GATE_POLICY)
    if not isinstance(settings, dict) or settings.get("slowRequestMs") is None:
        return None  # "mandatory", {"enforcementLevel": ...} or unset: the gate's default, errors only
    from rollout.gate_settings import SPECS, check_value  # only when the key is set: most stacks do not set it

    spec = SPECS["slow_request_ms"]
    return check_value(spec, settings["slowRequestMs"], f"{where}: {GATE_POLICY}.{spec.key}")
