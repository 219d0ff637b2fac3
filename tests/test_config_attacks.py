"""Stack-config edits a user could try to get around a promise, each refused with the key it names
(the validator runs before any resource is registered: tests/test_config_errors.py proves that part)."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import yaml

from rollout.config import parse_stack_config
from rollout.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def _production(**changes):
    raw = yaml.safe_load((ROOT / "Pulumi.production.yaml").read_text())["config"]
    bg = copy.deepcopy({k.split(":", 1)[1]: v for k, v in raw.items() if k.startswith("bluegreen:")})
    for path, value in changes.items():
        node = bg
        *parents, leaf = path.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return bg


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        # the header route must stay opt-in: no standard header (any case, any padding), no wildcard
        ({"traffic.headerRoute": {"name": "user-agent", "value": "x"}}, "bluegreen:traffic.headerRoute.name"),
        ({"traffic.headerRoute": {"name": " Host", "value": "x"}}, "bluegreen:traffic.headerRoute.name"),
        ({"traffic.headerRoute": {"name": "Accept-Language", "value": "en"}}, "bluegreen:traffic.headerRoute.name"),
        ({"traffic.headerRoute": {"name": "X-Ćanary", "value": "always"}}, "bluegreen:traffic.headerRoute.name"),
        ({"traffic.headerRoute": {"name": "X-Canary", "value": "a*b"}}, "bluegreen:traffic.headerRoute.value"),
        ({"traffic.headerRoute": {"name": "X-Canary", "value": ""}}, "bluegreen:traffic.headerRoute.value"),
        # the ladder and the step: no floats or booleans passing as integers
        ({"rollout.steps": [10.0, 100]}, "bluegreen:rollout.steps"),
        ({"rollout.step": True}, "bluegreen:rollout.step"),
        # non-finite numbers where the Lambdas' cadence and timeouts come from
        ({"probe.timeoutSeconds": math.nan}, "bluegreen:probe.timeoutSeconds"),
        ({"reflex.intervalSeconds": math.inf}, "bluegreen:reflex.intervalSeconds"),
        # break-glass needs a real reason; the probe hostname must be one the certificate covers exactly
        ({"breakGlass.reason": "x"}, "bluegreen:breakGlass.reason"),
        ({"traffic.testHostname": "*.example.com"}, "bluegreen:traffic.testHostname"),
    ],
    ids=lambda v: str(v)[:60],
)
def test_a_config_edit_that_would_break_a_promise_is_refused_by_key(changes, key):
    with pytest.raises(ConfigError) as err:
        parse_stack_config(_production(**changes), region="us-east-1")
    assert str(err.value).startswith(key), str(err.value)
    assert "\n" not in str(err.value), "one line"
