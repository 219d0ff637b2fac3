"""The pack converts an Analyze request's properties once per call (policy/properties_once.py), and
that changes nothing a policy sees: each policy still gets its own fresh props, unknown values still
raise in each policy that reads them, and other calls are converted by the SDK's own code.

Driven through the real SDK servicer (pulumi_policy's `_PolicyAnalyzerServicer.Analyze`), in process,
with the memo installed on the SDK module exactly as policy/__main__.py installs it.
"""

from __future__ import annotations

import importlib.util
import threading

import pytest
from pulumi.runtime.proto import analyzer_pb2
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy
from pulumi_policy import policy as sdk
from pulumi_policy.proxy import UnknownValueError

from rollout.analyzer import POLICY_DIR, UNKNOWN, to_struct

_spec = importlib.util.spec_from_file_location("bluegreen_properties_once", POLICY_DIR / "properties_once.py")
properties_once = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(properties_once)


@pytest.fixture
def once(monkeypatch):
    """The memo installed on the SDK module (restored afterwards), and a count of real conversions."""
    conversions = []
    real = sdk.json_format.MessageToDict

    class CountingJsonFormat:
        def __getattr__(self, name):
            return getattr(sdk.json_format_real, name)

        @staticmethod
        def MessageToDict(message, *a, **kw):  # noqa: N802
            conversions.append(message)
            return real(message, *a, **kw)

    monkeypatch.setattr(sdk, "json_format_real", sdk.json_format, raising=False)
    monkeypatch.setattr(sdk, "json_format", CountingJsonFormat())
    monkeypatch.setattr(sdk, "deserialize_properties", sdk.deserialize_properties)
    memo = properties_once.PropertiesOncePerCall.install(sdk)
    assert memo is not None and sdk.json_format is memo
    memo.conversions = conversions
    return memo


def _servicer(*policies):
    return sdk._PolicyAnalyzerServicer(
        "t", "0.0.1", list(policies), EnforcementLevel.MANDATORY, None, "", "t", None, "aws", [], None
    )


def _policy(name, check):
    return ResourceValidationPolicy(name=name, description=name, validate=check)


def _analyze(servicer, memo, props):
    request = analyzer_pb2.AnalyzeRequest(type="aws:lb/listener:Listener", properties=to_struct(props), urn="urn:x", name="x")
    with memo.call(request.properties):
        return servicer.Analyze(request, None)


def test_a_policy_that_writes_into_its_props_does_not_change_what_the_next_one_sees(once):
    seen = []

    def writer(args, report):
        args.props["port"] = 1  # top level
        args.props["tags"]["bluegreen:listener"] = "forged"  # nested
        args.props["defaultActions"][0]["type"] = "redirect"  # inside a list

    def reader(args, report):
        seen.append((args.props["port"], dict(args.props["tags"]), args.props["defaultActions"][0]["type"]))

    servicer = _servicer(_policy("a-writer", writer), _policy("b-reader", reader), _policy("c-reader", reader))
    props = {"port": 443, "tags": {"bluegreen:listener": "production"}, "defaultActions": [{"type": "forward"}]}
    _analyze(servicer, once, props)
    assert seen == [(443.0, {"bluegreen:listener": "production"}, "forward")] * 2
    assert len(once.conversions) == 1  # three policies, one conversion


def test_an_unknown_value_still_raises_in_every_policy_that_reads_it(once):
    def reads_arn(args, report):
        args.props["loadBalancerArn"]  # noqa: B018 - reading it is the check

    servicer = _servicer(_policy("first", reads_arn), _policy("second", reads_arn))
    response = _analyze(servicer, once, {"loadBalancerArn": UNKNOWN, "port": 443})
    skipped = [d.policyName for d in response.diagnostics if "can't be known during preview" in d.message]
    assert skipped == ["first", "second"]


def test_a_policy_raising_unknown_value_error_is_not_caught_by_the_memo(once):
    def raises(args, report):
        raise UnknownValueError(UNKNOWN, ["x"])

    response = _analyze(_servicer(_policy("p", raises)), once, {"x": 1})
    assert [d.policyName for d in response.diagnostics] == ["p"]


def test_outside_a_call_and_on_other_threads_the_sdk_converts_as_before(once):
    a = to_struct({"a": 1})
    b = to_struct({"b": 2})
    assert sdk.json_format.MessageToDict(a) == {"a": 1.0}
    assert sdk.json_format.MessageToDict(a) is not sdk.json_format.MessageToDict(a)  # no memo outside a call
    with once.call(a):
        first = sdk.json_format.MessageToDict(a)
        assert sdk.json_format.MessageToDict(a) is first
        assert sdk.json_format.MessageToDict(b) == {"b": 2.0}  # another message: converted afresh
        other = []
        t = threading.Thread(target=lambda: other.append(sdk.json_format.MessageToDict(a)))
        t.start()
        t.join()
        assert other[0] == first and other[0] is not first  # another thread's call is its own
        # deserialize_properties: the memo only for this call's converted dict, never with proxy_secrets
        assert sdk.deserialize_properties(first) is sdk.deserialize_properties(first)
        assert sdk.deserialize_properties(first, True) is not sdk.deserialize_properties(first, True)
    assert sdk.json_format.MessageToDict(a) is not first  # the call ended: its memo is gone
