"""Every name the program hands AWS (set explicitly or autonamed by the provider) is valid for every
service name the validator accepts, and a stack that deploys today keeps its names (no replacement).

The program runs under the mock runtime (rollout.simulate), which records each resource's logical name
and inputs; an unset name is what the provider would autoname: logical name + "-" + 7 hex
(rollout.names, from pulumi-aws and pulumi-terraform-bridge).
"""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rollout.config import _NAME_RE, parse_stack_config
from rollout.names import RULES, autoname, explicit_name, name_problem
from rollout.simulate import load_stack_file, run_program

service_names = st.from_regex(_NAME_RE, fullmatch=True)


def _aws_names(simulation) -> dict[str, tuple[str, str]]:
    """urn -> (type, the name AWS would get)."""
    out = {}
    for r in simulation.resources:
        rule = RULES.get(r.type)
        if rule is None:
            continue
        given_name = r.inputs.get(rule.prop)
        if given_name is None:
            assert rule.autonamed, f"{r.urn}: {rule.prop} is required and unset"
            given_name = autoname(r.name)
        out[r.urn] = (r.type, given_name)
    return out


@settings(max_examples=2, deadline=None)  # the named cases and two drawn names; 25 drawn under -m explore (below)
@given(name=service_names)
@example(name="a" * 24)
@example(name="internal-api")
@example(name="sg-web")
@example(name="abcdefgh")  # 8 characters: the target group's autoname was 33
def test_every_aws_name_is_valid_for_every_accepted_service_name(name):
    _check_every_aws_name(name)


@pytest.mark.explore
@settings(max_examples=25, deadline=None)
@given(name=service_names)
def test_every_aws_name_is_valid_for_every_accepted_service_name_explored(name):
    _check_every_aws_name(name)


def _check_every_aws_name(name: str) -> None:
    """Two program runs (both stacks) with service name `name`: every name AWS gets is valid, target groups distinct."""
    parse_stack_config({**_bluegreen(load_stack_file("production")), "service": {"name": name}})  # the validator accepts it
    for stack in ("production", "staging"):
        s = run_program(stack, overrides={"bluegreen:service.name": name})
        names = _aws_names(s)
        assert any(t == "aws:lb/targetGroup:TargetGroup" for t, _ in names.values())
        for urn, (type_, aws_name) in names.items():
            problem = name_problem(type_, aws_name)
            assert problem is None, f"{urn}: {problem}"
        per_type: dict[str, list[str]] = {}
        for type_, aws_name in names.values():
            per_type.setdefault(type_, []).append(aws_name)
        tgs = per_type["aws:lb/targetGroup:TargetGroup"]
        assert len(set(tgs)) == len(tgs), tgs


def _bluegreen(stack_file: dict) -> dict:
    return {k.split(":", 1)[1]: v for k, v in stack_file.items() if k.startswith("bluegreen:")}


def test_names_that_deploy_today_stay_autonamed():
    """`web` (the shipped stacks) gets no explicit name: adding one would replace a live target group."""
    s = run_program("production")
    for r in s.resources:
        rule = RULES.get(r.type)
        if rule is not None and rule.autonamed:
            assert r.inputs.get(rule.prop) is None, f"{r.urn}: explicit {rule.prop} {r.inputs.get(rule.prop)!r}"


@given(logical=st.from_regex(re.compile(r"^[a-z][a-z0-9-]{0,60}[a-z0-9]$"), fullmatch=True), stack=st.sampled_from(["staging", "production"]))
@example(logical="sg", stack="staging")  # "sg" + "-" + digest would start with the forbidden "sg-"
@example(logical="internal", stack="production")
def test_explicit_names_are_stable_valid_and_only_where_needed(logical, stack):
    for type_ in ("aws:lb/targetGroup:TargetGroup", "aws:lb/loadBalancer:LoadBalancer", "aws:ec2/securityGroup:SecurityGroup"):
        name = explicit_name(type_, logical, f"bluegreen/{stack}")
        assert name == explicit_name(type_, logical, f"bluegreen/{stack}")  # same inputs, same name, every update
        if name is None:
            assert name_problem(type_, autoname(logical)) is None
        else:
            assert name_problem(type_, name) is None, name
            assert name != explicit_name(type_, logical, "bluegreen/other"), "two stacks in one account would collide"


def test_the_old_target_group_autoname_broke_past_seven_characters():
    assert name_problem("aws:lb/targetGroup:TargetGroup", autoname("abcdefgh-traffic-tg-green")) is not None
    assert name_problem("aws:lb/loadBalancer:LoadBalancer", autoname("internal-api-traffic-alb"))
