"""What keeps `rollout plan` and the simulations cheap stays true (bench/plan_speed.py times it; tests never time).

* The offline pack (`python -m rollout plan` starts it) makes no AWS client, so it must not pay for
  importing boto3 / botocore's client machinery: those are imported where a client is made.
* Simulations skip the SDK's per-resource stack trace (the mock monitor drops source positions),
  but only inside a simulated run: a real program in the same process still sends them.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rollout.analyzer import OFFLINE_TOKEN_ENV, POLICY_DIR, offline_pack_env
from rollout.simulate import ROOT, run_program

HEAVY = ("boto3", "botocore.client", "botocore.config", "botocore.parsers", "botocore.session")


def test_the_offline_pack_imports_no_aws_client_machinery():
    # exactly the pack's imports (policy/__main__.py) without starting its gRPC server
    code = (
        "import json, runpy, sys; import pulumi_policy\n"
        "pulumi_policy.PolicyPack = lambda **kw: None\n"  # the constructor would serve and block
        f"runpy.run_path({str(POLICY_DIR)!r}, run_name='__main__')\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    env = offline_pack_env("t0ken")
    assert env[OFFLINE_TOKEN_ENV] == "t0ken"
    out = subprocess.run([sys.executable, "-c", code], cwd=POLICY_DIR, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [], out.stdout


def test_an_aws_client_still_gets_its_bounded_config():
    from rollout.live import elbv2_client

    config = elbv2_client("us-east-1").meta.config  # boto3 and botocore.config imported here, on first use
    # client_config's max_attempts=2 counts retries: botocore keeps it as 3 attempts in all
    assert (config.connect_timeout, config.read_timeout) == (3.0, 10.0)
    assert config.retries == {"mode": "standard", "total_max_attempts": 3}


def test_source_positions_are_skipped_inside_a_simulation_only():
    from pulumi.runtime import resource as sdk_resource

    sim = run_program("production")
    assert sim.custom  # the run registered resources with the wrapper in place
    assert getattr(sdk_resource._get_stack_trace, "_bluegreen_wrapped", False)

    def __init__():  # the SDK looks for the third __init__ frame up the stack: give it three
        def __init__():
            def __init__():
                return sdk_resource._get_stack_trace()

            return __init__()

        return __init__()

    outside = __init__()
    assert len(outside.frames) > 0 and any(str(ROOT.name) in f.pc.uri or "test_import_cost" in f.pc.uri for f in outside.frames)


def test_build_plan_leaves_the_callers_garbage_collector_as_it_found_it(monkeypatch):
    """build_plan runs its first simulation without cyclic collection and freezes what it loaded;
    the caller gets its collector back as it was, also when the plan fails."""
    import gc

    from rollout.errors import ConfigError
    from rollout.plan import build_plan
    from rollout.simulate import load_stack_file

    seen = []
    monkeypatch.setattr("rollout.plan.run_program", lambda *a, **k: seen.append((gc.isenabled(), gc.get_freeze_count() > 0)) or run_program(*a, **k))
    assert gc.isenabled() and gc.get_freeze_count() == 0
    plan = build_plan("production", to_step=1)
    assert len(plan.rows) == 2
    assert seen == [(False, False), (True, True)]  # first run: collector off; later runs: on, the first run's objects frozen
    assert gc.isenabled() and gc.get_freeze_count() == 0

    cfg = load_stack_file("production")
    cfg["bluegreen:rollout"] = {**cfg["bluegreen:rollout"], "step": 1}

    def fails_after_the_first_run(*a, **k):
        if k.get("overrides"):
            raise ConfigError("bluegreen:x", "boom")
        return run_program(*a, **k)

    monkeypatch.setattr("rollout.plan.run_program", fails_after_the_first_run)
    with pytest.raises(ConfigError):
        build_plan("production", config=cfg)
    assert gc.isenabled() and gc.get_freeze_count() == 0
    gc.disable()
    try:
        build_plan("production", to_step=0)
        assert not gc.isenabled()  # a caller that had it off keeps it off
    finally:
        gc.enable()


def test_the_program_imports_none_of_the_functions_aws_sdk():
    """The program declares the probe and reflex functions but never runs their code: importing the component
    modules and every `rollout` / `components` module `__main__.py` imports loads no boto3 / botocore / requests
    (the handlers' SDK, which the program would otherwise pay for on every run), nor the judge or the gate the
    handlers and the pack run."""
    import ast

    tree = ast.parse((ROOT / "__main__.py").read_text())
    modules = sorted({"components.probe", "components.reflex"} | {
        node.module for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("rollout", "components")
    })
    assert "rollout.config" in modules and len(modules) > 5, modules  # the walk found the program's imports
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(({n.split('.')[0] for n in sys.modules} & {'boto3', 'botocore', 'requests'})\n"
        "                        | (set(sys.modules) & {'rollout.judge', 'rollout.gate', 'rollout.metrics'}))))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [], f"{out.stdout} imported by one of {modules}"
