"""Reading the live ALB state with boto3 from a real moto_server on 127.0.0.1."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from rollout.errors import LiveStateError
from rollout.live import (
    LiveListener,
    LiveState,
    aws_fault_reason,
    elbv2_client,
    read_live_state,
    target_group_colors,
)

FAKE_LB = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/bg/0123456789abcdef"


def test_reads_weights_per_colour_from_a_realistic_alb(aws):
    alb = aws.build_alb(stable="blue", candidate_weight=25, health_paths={"green": "/ready"})
    state = read_live_state(aws.client("elbv2"), alb.load_balancer)
    assert isinstance(state, LiveState)
    assert state.load_balancer_arn == alb.load_balancer
    assert state.dns_name == alb.dns_name
    assert state.production == LiveListener(
        arn=alb.production_listener,
        port=80,
        protocol="HTTP",
        weights={"blue": 75, "green": 25},
        target_groups=alb.target_groups,
        tags={"bluegreen:listener": "production", "bluegreen:stable": "blue"},
    ), state.production
    assert state.test is not None
    assert state.test.arn == alb.test_listener
    assert state.test.weights == {"green": 100}, "plain TargetGroupArn forward counts as weight 100"
    assert state.test.target_groups == {"green": alb.target_groups["green"]}
    assert state.health_paths == {"blue": "/healthz", "green": "/ready"}


def test_colours_come_from_target_group_tags_not_names(aws):
    alb = aws.build_alb(stable="blue", candidate_weight=10)
    elbv2 = aws.client("elbv2")
    # Swap the tags: the target group *named* bg-blue is now the green one.
    elbv2.add_tags(ResourceArns=[alb.target_groups["blue"]], Tags=[{"Key": "bluegreen:color", "Value": "green"}])
    elbv2.add_tags(ResourceArns=[alb.target_groups["green"]], Tags=[{"Key": "bluegreen:color", "Value": "blue"}])
    state = read_live_state(elbv2, alb.load_balancer)
    assert state.production.weights == {"green": 90, "blue": 10}
    assert state.production.target_groups == {"green": alb.target_groups["blue"], "blue": alb.target_groups["green"]}


def test_after_finish_all_traffic_on_one_colour(aws):
    alb = aws.build_alb(stable="green", candidate_weight=0)
    state = read_live_state(aws.client("elbv2"), alb.load_balancer)
    assert state.production.weights == {"green": 100, "blue": 0}
    assert state.production.tags["bluegreen:stable"] == "green"
    assert state.test.weights == {"blue": 100}


def test_production_listener_by_port_when_untagged(aws):
    alb = aws.build_alb(tag_production=False, test_listener=False)
    elbv2 = aws.client("elbv2")
    by_port = read_live_state(elbv2, alb.load_balancer, production_port=80)
    assert by_port.production is not None and by_port.production.arn == alb.production_listener
    assert by_port.production.weights == {"blue": 90, "green": 10}
    assert by_port.test is None
    assert read_live_state(elbv2, alb.load_balancer).production is None


def test_two_production_listeners_are_refused(aws):
    alb = aws.build_alb()
    elbv2 = aws.client("elbv2")
    elbv2.add_tags(ResourceArns=[alb.test_listener], Tags=[{"Key": "bluegreen:listener", "Value": "production"}])
    with pytest.raises(LiveStateError, match="more than one production listener"):
        read_live_state(elbv2, alb.load_balancer)


def test_untagged_target_group_behind_a_listener_is_refused(aws):
    alb = aws.build_alb()
    elbv2 = aws.client("elbv2")
    elbv2.remove_tags(ResourceArns=[alb.target_groups["green"]], TagKeys=["bluegreen:color"])
    with pytest.raises(LiveStateError, match=r"bg-green/.* has no bluegreen:color tag"):
        read_live_state(elbv2, alb.load_balancer)


def test_target_group_colors(aws):
    alb = aws.build_alb()
    elbv2 = aws.client("elbv2")
    arns = [alb.target_groups["blue"], alb.target_groups["green"]]
    assert target_group_colors(elbv2, arns) == {alb.target_groups["blue"]: "blue", alb.target_groups["green"]: "green"}
    elbv2.remove_tags(ResourceArns=[alb.target_groups["green"]], TagKeys=["bluegreen:color"])
    assert target_group_colors(elbv2, arns) == {alb.target_groups["blue"]: "blue"}
    assert target_group_colors(elbv2, []) == {}


def test_client_helpers_honour_aws_endpoint_url(aws):
    alb = aws.build_alb()
    client = elbv2_client()
    assert client.meta.endpoint_url == aws.endpoint
    assert client.meta.config.connect_timeout == 3.0 and client.meta.config.read_timeout == 10.0
    assert read_live_state(client, alb.load_balancer).production.weights == {"blue": 90, "green": 10}


# --------------------------------------------------------------------------- faults


def test_load_balancer_not_found(aws):
    with pytest.raises(LiveStateError, match=f"load balancer not found: {FAKE_LB}"):
        read_live_state(aws.client("elbv2"), FAKE_LB)


def test_endpoint_down(aws, closed_endpoint):
    elbv2 = aws.client("elbv2", endpoint_url=closed_endpoint)
    with pytest.raises(LiveStateError, match=f"AWS endpoint unreachable: {closed_endpoint}"):
        read_live_state(elbv2, FAKE_LB)
    with pytest.raises(LiveStateError, match="AWS endpoint unreachable"):
        target_group_colors(elbv2, ["arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/x/1"])


def test_throttling(aws, throttling_endpoint):
    elbv2 = aws.client("elbv2", endpoint_url=throttling_endpoint.url)
    with pytest.raises(LiveStateError, match=r"AWS throttling \(Throttling\) on DescribeLoadBalancers after retries"):
        read_live_state(elbv2, FAKE_LB)
    assert throttling_endpoint.calls >= 2


def test_access_denied(aws):
    alb = aws.build_alb()
    key, secret = aws.iam_user("status-reader", ["elasticloadbalancing:DescribeLoadBalancers"])
    with aws.enforce_iam():
        elbv2 = aws.client("elbv2", aws_access_key_id=key, aws_secret_access_key=secret)
        with pytest.raises(LiveStateError) as err:
            read_live_state(elbv2, alb.load_balancer)
    assert "AWS AccessDenied on DescribeListeners" in str(err.value)
    assert "elasticloadbalancing:DescribeListeners" in str(err.value)


def test_no_credentials(no_aws_credentials):
    with pytest.raises(LiveStateError, match="no AWS credentials"):
        read_live_state(elbv2_client(), FAKE_LB)


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        ("ExpiredToken", "The security token included in the request is expired", "AWS credentials expired (ExpiredToken)"),
        ("RequestLimitExceeded", "slow down", "AWS throttling (RequestLimitExceeded) on DescribeListeners"),
        ("AccessDeniedException", "nope", "AWS AccessDenied on DescribeListeners: nope"),
        ("ListenerNotFound", "gone", "listener not found: arn:x"),
        ("InternalFailure", "oops", "AWS InternalFailure on DescribeListeners: oops"),
        ("403", "<ErrorResponse><Error><Code>AccessDenied</Code><Message>no &amp; no</Message></Error></ErrorResponse>",
         "AWS AccessDenied on DescribeListeners: no & no"),
        ("500", "<html>boom</html>", "AWS HTTP 500 on DescribeListeners: <html>boom</html>"),
    ],
)
def test_fault_reasons(code, message, expected):
    exc = ClientError({"Error": {"Code": code, "Message": message}}, "DescribeListeners")
    reason = aws_fault_reason(exc, "arn:x")
    assert reason.startswith(expected), reason


def test_unexpected_exception_reason_names_its_type():
    assert aws_fault_reason(KeyError("LoadBalancers")) == "unexpected KeyError: 'LoadBalancers'"
