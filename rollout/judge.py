"""The relative judge: is the candidate's bad-event rate worse than stable's? Pure (no AWS, no Pulumi).

Per minute it takes, for each colour, the request count and the bad-event counts by kind
(``errors``: target 5xx plus target connection errors, both a request that failed; ``slow``:
requests slower than the configured threshold) and accumulates evidence in two e-processes per kind:

* **fail** -- against H0 "candidate rate <= tolerated_ratio x stable rate". Given the ``E`` bad
  events of one kind in one minute, the number that came from the candidate is Binomial(E, p) with
  ``p = r·n_c / (r·n_c + n_s)`` when the rate ratio is ``r`` (the conditional form of two Poisson
  processes; a burst that multiplies both colours' rates in a minute cancels out). Under H0,
  ``p <= p0 = ρ·n_c/(ρ·n_c + n_s)``. The likelihood ratio of an alternative ``r > ρ`` against p0
  has conditional expectation <= 1 for every p <= p0, so the product over minutes is a
  non-negative supermartingale under every H0 distribution, whatever the weights and traffic do
  from minute to minute (they only need to be known when the minute's counts are). A fixed grid
  mixture over alternatives keeps that property (Lindon & Malek, NeurIPS 2022, reduce
  time-inhomogeneous Poisson processes with a common multiplicative time effect to exactly this
  "which colour did the next event come from" multinomial; their Dirichlet mixture is closed-form
  only for a fixed allocation, so with weights that change per step a grid mixture is used
  instead). The kinds are combined by averaging their e-processes (an average of
  supermartingales is one), and ``fail`` is declared when the average reaches ``1/alpha``:
  Ville's inequality bounds the false-alarm probability by alpha however often anyone looks.
* **pass** -- the mirror image, against H0' "candidate rate >= pass_ratio x stable rate", with
  alternatives below pass_ratio. Rejecting it is the upper end of a confidence sequence for the
  rate ratio lying below pass_ratio. Each kind the users showed must reject it at ``alpha/K`` on
  the user stratum alone (below); a kind that neither colour showed in user
  traffic over at least ``min_candidate_requests`` candidate *user* requests is quiet (nothing to
  compare, nothing wrong). Synthetic requests never count towards that minimum.

**Early look.** Half of alpha is spent on one fixed look at the end of the step's second minute: the
exact conditional test of the candidate's pooled count of that kind over the first two minutes
(under H0 a sum of Binomial(E_i, p0_i), at level alpha/2). The fail e-value of a kind is
``(1 - 1/2)·mixture + (1/2)·bet`` with ``bet = 1{rejected}/(alpha/2)`` from minute 2 on and 0 before
(a lower bound of the stopped martingale P(reject | data so far)/(alpha/2)), so it stays a test
supermartingale and Ville's bound holds. It only applies when the caller's minutes start where the
weights changed (``from_step_start=True``); otherwise every look would be a new first two minutes.

**Synthetic stratum.** ``Minute`` may carry a second stratum: synthetic requests the in-VPC probe
function sent straight to each colour's targets (the same number to each, decided before the
answers, and never through the load balancer, so the per-target-group ALB counts stay user traffic
only). Per minute and alternative, the stratum's likelihood ratio multiplies the user stratum's:
given the past and both strata's totals, the two splits are independent binomials, so the product
has conditional expectation <= 1 under H0 "the candidate is no worse than the tolerated ratio in
either stratum": ``fail`` is evidence of a regression in either. ``pass`` is not the mirror product
(that would reject only "regressed in both strata", so a regression in user traffic alone could
pass on healthy synthetic evidence): a pass rests on the user stratum alone, which must reject H0'
on its own, so a user-only regression passes at most alpha/K of the time whatever the synthetic
path does; the synthetic stratum only adds fail evidence (requiring it to pass too would make a
little synthetic load, with a few failures a minute, delay every pass).
Pooling the strata would not be valid either: with unequal weights, a synthetic path whose error
rate differs from the users' would bias the pooled ratio (Simpson).

**A representative synthetic path** (``synthetic_representative``, the operator's
``bluegreen:probe.syntheticRepresentative``): the operator declares that a candidate at least pass_ratio x
worse for users is at least that much worse on the synthetic path. Under that assumption H0' holds in both
strata, so the product of both strata's pass likelihood ratios is a test supermartingale: a kind may pass on
that joint e-process (at alpha/K, one e-process for the whole step: it equals the users' own until the
synthetic stratum's first event), provided the users show no fail evidence (their own fail mixture <= 1 and
their own pass mixture >= 1) or pass on their own. The fail side is unchanged. A regression only user requests hit is the blind spot.

Verdicts: ``fail`` (evidence of a regression), ``pass`` (at least ``min_minutes`` of data and the
evidence above), ``insufficient`` (with an estimate of how many more minutes at the current
traffic it needs). See docs/health-gate.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from statistics import NormalDist
from typing import Iterable, Mapping, Sequence

from .errors import ConfigError

__all__ = [
    "KINDS",
    "FAIL",
    "PASS",
    "INSUFFICIENT",
    "JudgeConfig",
    "Minute",
    "KindEvidence",
    "Judgement",
    "judge",
    "fail_log_factors",
    "pass_log_factors",
    "mixture",
    "early_look_rejects",
    "fail_log_evalue",
    "EARLY_LOOK_MINUTES",
    "EARLY_LOOK_SHARE",
    "minutes_to_detect",
    "bake_plan",
    "StepWindow",
    "step_window",
    "EARLY_LOOK_SETTLE_MINUTES",
    "ONE_MINUTE_RETENTION",
]

KINDS = ("errors", "slow")
_LABELS = {"errors": "failed requests (target 5xx, connection errors)", "slow": "slow requests"}
FAIL, PASS, INSUFFICIENT = "fail", "pass", "insufficient"

_MAX_COUNT = 1e15
# Alternatives of the fail mixture, as multiples of the tolerated ratio; uniform weights.
FAIL_GRID = (1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
# Alternatives of the pass mixture, as fractions of the pass ratio; uniform weights.
PASS_GRID = (0.75, 0.5, 0.3, 0.15)
# The early look: at the end of this many minutes of the step, spending this share of alpha.
EARLY_LOOK_MINUTES = 2
EARLY_LOOK_SHARE = 0.5
# CloudWatch may still revise a minute shortly after its first read (the ALB sends each minute's counts at
# the end of its 60-second interval, and a late datapoint is added to the minute it belongs to): the early
# look waits until the look's last minute has been over for this long, so that it is taken on final counts.
EARLY_LOOK_SETTLE_MINUTES = 3
# GetMetricData keeps 60-second datapoints for 15 days (then only 5-minute ones): a step older than this
# can no longer be read from its start, and a window that lost its beginning is not a valid e-process.
ONE_MINUTE_RETENTION = timedelta(days=15) - timedelta(hours=1)
_EARLY_LOOK_MAX_EVENTS = 400  # above this the exact tail is not computed (the look is skipped: a valid lower bound)


@dataclass(frozen=True)
class JudgeConfig:
    """What the judge requires. Config keys (camelCase, under the gate's settings) in comments."""

    alpha: float = 0.05  # judgeAlpha: false-alarm (and false-pass) probability bound per step
    tolerated_ratio: float = 1.0  # judgeToleratedRatio: fail only on evidence the candidate is worse than this x stable
    pass_ratio: float = 2.0  # judgePassRatio: pass needs evidence the candidate is better than this x stable
    min_minutes: int = 5  # judgeMinMinutes: a pass needs at least this many minutes of data
    max_minutes: int = 60  # judgeMaxMinutes: the longest a step waits for a verdict; the judge reads the whole step
    min_candidate_requests: int = 300  # judgeMinRequests: a kind nobody showed is quiet only after this many

    def __post_init__(self) -> None:
        checks = (
            ("judgeAlpha", self.alpha, 0 < self.alpha < 1, "between 0 and 1 (exclusive)"),
            ("judgeToleratedRatio", self.tolerated_ratio, self.tolerated_ratio >= 1, "at least 1"),
            ("judgePassRatio", self.pass_ratio, self.pass_ratio > self.tolerated_ratio, "greater than judgeToleratedRatio"),
            ("judgeMinMinutes", self.min_minutes, self.min_minutes >= 1, "at least 1"),
            ("judgeMaxMinutes", self.max_minutes, self.max_minutes >= self.min_minutes, "at least judgeMinMinutes"),
            ("judgeMinRequests", self.min_candidate_requests, self.min_candidate_requests >= 0, "at least 0"),
        )
        for key, value, ok, what in checks:
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and ok):
                raise ConfigError(key, f"must be {what}; got {value!r}")


@dataclass(frozen=True)
class Minute:
    """One minute of both colours: requests and bad events by kind. Missing kinds count zero."""

    stable_requests: float = 0.0
    candidate_requests: float = 0.0
    stable_bad: Mapping[str, float] = field(default_factory=dict)
    candidate_bad: Mapping[str, float] = field(default_factory=dict)
    # The synthetic stratum: requests the probe function sent to each colour's targets directly, and
    # those that failed, by kind. Judged apart from the user traffic above, never added to it.
    stable_synthetic: float = 0.0
    candidate_synthetic: float = 0.0
    stable_synthetic_bad: Mapping[str, float] = field(default_factory=dict)
    candidate_synthetic_bad: Mapping[str, float] = field(default_factory=dict)

    def strata(self, kind: str) -> tuple[tuple[float, float, float, float], ...]:
        """(candidate events, stable events, candidate requests, stable requests) of each stratum."""
        return (
            (_clean(self.candidate_bad.get(kind)), _clean(self.stable_bad.get(kind)), _clean(self.candidate_requests), _clean(self.stable_requests)),
            (_clean(self.candidate_synthetic_bad.get(kind)), _clean(self.stable_synthetic_bad.get(kind)),
             _clean(self.candidate_synthetic), _clean(self.stable_synthetic)),
        )


@dataclass(frozen=True)
class KindEvidence:
    """The evidence for one kind of bad event."""

    kind: str
    stable_events: float
    candidate_events: float
    log_e_fail: float  # log of the fail e-process
    log_e_pass: float  # log of the pass e-process (the user stratum's: a pass rests on user traffic alone)
    ratio: float | None  # observed rate ratio candidate/stable (None when undefined)
    ratio_upper: float | None  # confidence-sequence upper bound of the ratio (None: not yet bounded)
    user_events: float = 0.0  # events of this kind in the user stratum (both colours)
    stratum_log_e_pass: tuple[float | None, ...] = ()  # per stratum (user, synthetic); None: no events there
    user_log_e_fail: float = 0.0  # log of the user stratum's own fail mixture (<= 0: the users show no fail evidence)
    log_e_pass_joint: float | None = None  # with a representative synthetic path: both strata's pass evidence together
    synthetic_pass: bool = False  # this kind's pass rests on synthetic evidence (the users' own evidence is not enough)


@dataclass(frozen=True)
class Judgement:
    """The verdict with its evidence. ``minutes_needed`` only for ``insufficient`` (None: unknown)."""

    verdict: str
    reason: str
    minutes: int
    stable_requests: float
    candidate_requests: float
    e_value: float  # the fail e-process (average over kinds); alarm at 1/alpha
    threshold: float  # 1/alpha
    kinds: tuple[KindEvidence, ...]
    minutes_needed: float | None = None
    stable_synthetic: float = 0.0  # synthetic requests over the window (a separate stratum)
    candidate_synthetic: float = 0.0
    # "user" | "synthetic": what a pass rests on ("synthetic": on the synthetic requests' evidence, which
    # the operator declared representative of user requests, bluegreen:probe.syntheticRepresentative); None: no pass.
    pass_basis: str | None = None

    def to_dict(self) -> dict:
        return {
            "verdict": self.verdict,
            "reason": self.reason,
            "minutes": self.minutes,
            "stableRequests": self.stable_requests,
            "candidateRequests": self.candidate_requests,
            "eValue": _finite(self.e_value),
            "threshold": self.threshold,
            "minutesNeeded": None if self.minutes_needed is None else round(self.minutes_needed, 1),
            "stableSyntheticRequests": self.stable_synthetic,
            "candidateSyntheticRequests": self.candidate_synthetic,
            "passBasis": self.pass_basis,
            "kinds": [
                {
                    "kind": k.kind,
                    "stableEvents": k.stable_events,
                    "candidateEvents": k.candidate_events,
                    "eFail": _finite(math.exp(min(k.log_e_fail, 700))),
                    "ePass": _finite(math.exp(min(k.log_e_pass, 700))),
                    "ratio": k.ratio,
                    "ratioUpper": k.ratio_upper,
                    "ePassJoint": None if k.log_e_pass_joint is None else _finite(math.exp(min(k.log_e_pass_joint, 700))),
                    "syntheticPass": k.synthetic_pass,
                }
                for k in self.kinds
            ],
        }


def _finite(x: float) -> float | None:
    return round(x, 4) if math.isfinite(x) else None


def _logsumexp_mean(logs: Sequence[float]) -> float:
    top = max(logs)
    if top == -math.inf:
        return -math.inf
    return top + math.log(sum(math.exp(v - top) for v in logs) / len(logs))


def _share(ratio: float, n_c: float, n_s: float) -> float:
    return ratio * n_c / (ratio * n_c + n_s)


def _minute_log_lr(c: float, s: float, n_c: float, n_s: float, null_ratio: float, alt_ratio: float) -> float:
    """log of (p1/p0)^c ((1-p1)/(1-p0))^s for one minute; 0 when the minute says nothing."""
    if c + s <= 0 or n_c <= 0 or n_s <= 0:
        return 0.0  # no events, or one colour had no traffic: the split is not informative
    # log(p1/p0) = log(alt/null) + log(q), log((1-p1)/(1-p0)) = log(q), q = (null·n_c + n_s)/(alt·n_c + n_s):
    # the same ratio, written so that no share rounds to 0 or 1 whatever the counts.
    log_q = math.log((null_ratio * n_c + n_s) / (alt_ratio * n_c + n_s))
    return c * math.log(alt_ratio / null_ratio) + (c + s) * log_q


def fail_log_factors(c: float, s: float, n_c: float, n_s: float, tolerated_ratio: float) -> list[float]:
    """One minute's log likelihood ratios for each alternative of the fail mixture (bench and judge share it)."""
    return [_minute_log_lr(c, s, n_c, n_s, tolerated_ratio, tolerated_ratio * g) for g in FAIL_GRID]


def pass_log_factors(c: float, s: float, n_c: float, n_s: float, pass_ratio: float) -> list[float]:
    """One minute's log likelihood ratios for each alternative of the pass mixture."""
    return [_minute_log_lr(c, s, n_c, n_s, pass_ratio, pass_ratio * g) for g in PASS_GRID]


def mixture(per_alt: Sequence[float]) -> float:
    """log of the uniform mixture of the alternatives' accumulated likelihood ratios (given as logs)."""
    return _logsumexp_mean(per_alt)


def _binomial_pmf(n: int, p: float) -> list[float]:
    if p <= 0.0 or p >= 1.0:
        return [1.0 if k == (n if p >= 1.0 else 0) else 0.0 for k in range(n + 1)]
    lp, lq, top = math.log(p), math.log1p(-p), math.lgamma(n + 1)
    return [math.exp(top - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * lp + (n - k) * lq) for k in range(n + 1)]


def early_look_rejects(cells: Sequence[tuple[float, float, float, float]], tolerated_ratio: float, alpha: float) -> bool:
    """The early look's exact conditional test at level ``alpha``: is the candidate's pooled count over
    ``cells`` ((candidate events, stable events, candidate requests, stable requests) per minute and
    stratum) improbable under H0? Under H0 it is at most a sum of Binomial(E_i, p0_i) with
    ``p0_i = ρ·n_c/(ρ·n_c + n_s)``; its upper tail is computed exactly (pure Python convolution).
    False when there are too many events to convolve cheaply or the counts are not whole: declining
    to look never invalidates the e-value (it is a lower bound)."""
    total, observed = 0, 0
    dist = [1.0]
    for c, s, n_c, n_s in cells:
        if c + s <= 0 or n_c <= 0 or n_s <= 0:
            continue
        if c != int(c) or s != int(s):
            return False
        e = int(c + s)
        total += e
        if total > _EARLY_LOOK_MAX_EVENTS:
            return False
        observed += int(c)
        pmf = _binomial_pmf(e, _share(tolerated_ratio, n_c, n_s))
        out = [0.0] * (len(dist) + e)
        for i, a in enumerate(dist):
            if a:
                for j, b in enumerate(pmf):
                    out[i + j] += a * b
        dist = out
    if total == 0:
        return False
    return math.fsum(dist[observed:]) <= alpha


def fail_log_evalue(mixture_log: float, early_rejected: bool | None, alpha: float) -> float:
    """log of a kind's fail e-value. ``early_rejected`` None: no early look is ever taken, the mixture
    alone. Otherwise (1 - λ)·mixture + λ·(early look's bet), λ = EARLY_LOOK_SHARE, the bet 1/(λ·alpha)
    when the look rejected at level λ·alpha and 0 otherwise (also before the look: a lower bound)."""
    if early_rejected is None:
        return mixture_log
    lam = EARLY_LOOK_SHARE
    m = math.log1p(-lam) + mixture_log if mixture_log > -math.inf else -math.inf
    if not early_rejected:
        return m
    bet = math.log(1.0 / alpha)
    top = max(m, bet)
    return top + math.log(math.exp(m - top) + math.exp(bet - top))


def _kinds_in(minutes: Sequence[Minute], kinds: Iterable[str] | None) -> tuple[str, ...]:
    if kinds is not None:
        return tuple(kinds)
    seen = {k for m in minutes for k in (*m.stable_bad, *m.candidate_bad)}
    return tuple(k for k in KINDS if k in seen) or tuple(sorted(seen)) or ("errors",)


def _clean(x: float | None) -> float:
    try:
        v = float(x or 0.0)
    except (TypeError, ValueError):
        return 0.0
    # No ALB serves 10^15 requests a minute; the cap keeps every product and sum below float overflow.
    return min(v, _MAX_COUNT) if math.isfinite(v) and v > 0 else 0.0


def judge(minutes: Sequence[Minute], config: JudgeConfig = JudgeConfig(), *, kinds: Iterable[str] | None = None,
          from_step_start: bool = False, early_look_ready: bool = True, synthetic_representative: bool = False) -> Judgement:
    """Judge the candidate on these minutes (oldest first, all of them).

    The minutes must begin at a point fixed before anyone looked -- the step's start (``step_window``) --
    and every later look must pass the same beginning: the judge never drops old minutes, because a
    window that slides forgets the evidence and restarts the e-process, so that every look would be a
    fresh chance of a false verdict. ``config.max_minutes`` is how long a step waits for a verdict
    (the planner's and the autopilot's business), not how far back the judge reads.

    ``kinds`` are the bad-event kinds being counted (default: those present in the data, at least
    ``5xx``); a kind that is counted but had no events in a minute is zero for that minute.
    ``from_step_start``: the first minute given is the first whole minute of the current weights, so
    the early look (the first ``EARLY_LOOK_MINUTES``) may be used; without it the look is never taken.
    ``early_look_ready`` False: those minutes may still be revised by CloudWatch, so the look is not
    taken yet (its bet counts 0, a lower bound; ``step_window`` says when it is ready).
    ``synthetic_representative``: the operator declared the synthetic path representative of user
    requests (``bluegreen:probe.syntheticRepresentative``: a candidate at least ``pass_ratio`` x worse for
    users is at least that much worse on the synthetic path). A kind's pass e-process is then both strata's
    pass likelihood ratios multiplied (one e-process, still at ``alpha/K``), and a pass that the users' own
    evidence does not reach also needs the users to show no fail evidence (their own fail mixture <= 1 and
    pass mixture >= 1).
    Without it a pass rests on user traffic alone.
    """
    cfg = config
    window = list(minutes)
    ks = _kinds_in(window, kinds)
    K = len(ks)
    threshold = 1.0 / cfg.alpha
    n_s_total = sum(_clean(m.stable_requests) for m in window)
    n_c_total = sum(_clean(m.candidate_requests) for m in window)

    syn_s_total = sum(_clean(m.stable_synthetic) for m in window)
    syn_c_total = sum(_clean(m.candidate_synthetic) for m in window)
    look = len(window) >= EARLY_LOOK_MINUTES  # the step's first minutes are here

    evidence: list[KindEvidence] = []
    bounds = (1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0)
    level = math.log(threshold * K)
    for k in ks:
        fail_alts = [0.0] * len(FAIL_GRID)
        user_fail_alts = [0.0] * len(FAIL_GRID)  # the users' own fail evidence (the guard of a synthetic pass)
        # Pass evidence per stratum (user, synthetic), and both together (index 2: used only when representative).
        pass_alts = [[0.0] * len(PASS_GRID) for _ in range(3)]
        upper_alts = [{b: [0.0] * len(PASS_GRID) for b in bounds} for _ in range(3)]
        events = [[0.0, 0.0] for _ in range(2)]  # per stratum: candidate, stable events
        for m in window:
            for st, (c, s, n_c, n_s) in enumerate(m.strata(k)):  # the user stratum, then the synthetic one
                events[st][0] += c
                events[st][1] += s
                if c + s <= 0 or n_c <= 0 or n_s <= 0:
                    continue
                for i, g in enumerate(FAIL_GRID):
                    lr = _minute_log_lr(c, s, n_c, n_s, cfg.tolerated_ratio, cfg.tolerated_ratio * g)
                    fail_alts[i] += lr
                    if st == 0:
                        user_fail_alts[i] += lr
                for i, g in enumerate(PASS_GRID):
                    lr = _minute_log_lr(c, s, n_c, n_s, cfg.pass_ratio, cfg.pass_ratio * g)
                    pass_alts[st][i] += lr
                    pass_alts[2][i] += lr
                for b in bounds:
                    for i, g in enumerate(PASS_GRID):
                        lr = _minute_log_lr(c, s, n_c, n_s, b, b * g)
                        upper_alts[st][b][i] += lr
                        upper_alts[2][b][i] += lr
        c_tot = events[0][0] + events[1][0]
        s_tot = events[0][1] + events[1][1]
        shown = [st for st in range(2) if events[st][0] + events[st][1] > 0]  # strata with events of this kind
        ratio = None
        n_c_k = n_c_total + syn_c_total
        stable_rate = s_tot / (n_s_total + syn_s_total) if n_s_total + syn_s_total > 0 else 0.0  # may underflow for absurd counts
        if stable_rate > 0 and n_c_k > 0 and math.isfinite(stable_rate):
            ratio = round((c_tot / n_c_k) / stable_rate, 3)
        # The user stratum's own bound (what a pass is about).
        upper = next((b for b in bounds if mixture(upper_alts[0][b]) >= level), None) if 0 in shown else None
        early = None
        if from_step_start:  # the e-value is (1-λ)·mixture + λ·bet for the whole step, the look taken or not
            early = look and early_look_ready and early_look_rejects(
                [cell for m in window[:EARLY_LOOK_MINUTES] for cell in m.strata(k)], cfg.tolerated_ratio, EARLY_LOOK_SHARE * cfg.alpha)
        log_fail = fail_log_evalue(mixture(fail_alts), early, cfg.alpha)
        log_pass = mixture(pass_alts[0]) if 0 in shown else 0.0
        joint = None
        if synthetic_representative and 1 in shown:
            # Until the synthetic stratum's first event this product equals the user stratum's own e-process, so one
            # e-process decides a pass throughout the step: no second chance, no alpha spent twice.
            joint = mixture(pass_alts[2])
            joint_upper = next((b for b in bounds if mixture(upper_alts[2][b]) >= level), None)
            if joint_upper is not None and (upper is None or joint_upper < upper) and joint >= level and log_pass < level:
                upper = joint_upper  # the bound a synthetic pass shows (under the declared assumption)
        evidence.append(KindEvidence(k, s_tot, c_tot, log_fail, log_pass, ratio, upper,
                                     user_events=events[0][0] + events[0][1],
                                     stratum_log_e_pass=tuple(mixture(pass_alts[st]) if st in shown else None for st in range(2)),
                                     user_log_e_fail=mixture(user_fail_alts), log_e_pass_joint=joint))

    log_e = _logsumexp_mean([e.log_e_fail for e in evidence])
    e_value = math.exp(min(log_e, 700.0))
    n = len(window)
    base = dict(minutes=n, stable_requests=n_s_total, candidate_requests=n_c_total, e_value=e_value,
                threshold=threshold, stable_synthetic=syn_s_total, candidate_synthetic=syn_c_total)

    if log_e >= math.log(threshold):
        worst = max(evidence, key=lambda e: e.log_e_fail)
        what = f"{worst.candidate_events:g} {_LABELS.get(worst.kind, worst.kind)} from the candidate vs {worst.stable_events:g} from stable"
        ratio = f" (observed ratio {worst.ratio:g}x)" if worst.ratio is not None else ""
        return Judgement(FAIL, f"evidence of a regression: e-value {e_value:.3g} >= {threshold:g}; {what}{ratio} "
                               f"over {n} min, tolerated ratio {cfg.tolerated_ratio:g}x", kinds=tuple(evidence), **base)

    if n_c_total + syn_c_total <= 0:
        return Judgement(INSUFFICIENT, f"no candidate requests in {n} min: nothing to judge yet", minutes_needed=None,
                         kinds=tuple(evidence), **base)

    pending: list[str] = []
    for i, e in enumerate(evidence):
        user_ok = (e.log_e_pass >= level) if e.user_events > 0 else n_c_total >= cfg.min_candidate_requests
        if e.log_e_pass_joint is not None:
            # Representative synthetic path with events of this kind: the joint e-process must pass, and where the
            # users' own evidence does not, they must at least show no fail evidence.
            if e.log_e_pass_joint >= level and (user_ok or _users_show_no_fail_evidence(e)):
                if not user_ok:
                    evidence[i] = e = _with_synthetic_pass(e)
                continue
            why = ("users show fail evidence (their own fail e-value "
                   f"{math.exp(min(e.user_log_e_fail, 700)):.3g}, pass e-value {math.exp(min(e.log_e_pass, 700)):.3g}: "
                   "a pass on synthetic evidence needs <= 1 and >= 1)") if e.log_e_pass_joint >= level else (
                f"ratio not yet shown below {cfg.pass_ratio:g}x on user and synthetic traffic together")
            pending.append(f"{e.kind}: {why}")
            continue
        # The user stratum: a kind it never showed is quiet only after enough *user* requests (synthetic
        # requests never count towards it: a synthetic path that cannot fail would make any service quiet).
        if e.user_events <= 0 and not user_ok:
            pending.append(f"{e.kind}: none yet in {n_c_total:g} candidate user requests (needs {cfg.min_candidate_requests})")
            continue
        # The user stratum must pass on its own; the synthetic stratum only adds fail evidence.
        if not user_ok:
            pending.append(f"{e.kind}: ratio not yet shown below {cfg.pass_ratio:g}x on user traffic")
    base["kinds"] = tuple(evidence)
    if not pending and n >= cfg.min_minutes:
        on_synthetic = [e.kind for e in evidence if e.synthetic_pass]
        bounds_text = ", ".join(f"{e.kind} < {e.ratio_upper:g}x" for e in evidence if e.ratio_upper is not None)
        if on_synthetic:
            basis = (f" ON SYNTHETIC EVIDENCE ({', '.join(on_synthetic)}: {syn_c_total:g} synthetic candidate requests, "
                     "declared representative of user requests by bluegreen:probe.syntheticRepresentative; "
                     "user traffic alone has not shown it, and shows no fail evidence)")
        else:
            basis = f", {syn_c_total:g} synthetic candidate requests judged apart" if syn_c_total else ""
        return Judgement(PASS, f"no regression: over {n} min the candidate's rates are below {cfg.pass_ratio:g}x stable's"
                               + (f" ({bounds_text})" if bounds_text else "") + f"; e-value {e_value:.3g} < {threshold:g}{basis}",
                         pass_basis="synthetic" if on_synthetic else "user", **base)
    try:
        needed = _minutes_needed(window, evidence, cfg, K)
    except (ArithmeticError, ValueError):  # extreme counts: an estimate is not worth an exception
        needed = None
    if not pending:
        needed = max(needed or 0.0, float(cfg.min_minutes - n))
        pending.append(f"at least {cfg.min_minutes} min of data required, {n} so far")
    if needed is not None and not (math.isfinite(needed) and needed < 1e7):
        needed = None
    more = "unknown at the current ratio" if needed is None else f"~{math.ceil(needed)} more min at current traffic"
    return Judgement(INSUFFICIENT, f"not enough evidence yet ({more}): " + "; ".join(pending), minutes_needed=needed, **base)


def _users_show_no_fail_evidence(e: KindEvidence) -> bool:
    """The guard of a pass on synthetic evidence: the users' own data lean neither towards a regression (their fail
    mixture <= 1) nor towards one at least pass_ratio x worse (their pass mixture >= 1). Both are 1 without user events."""
    return e.user_log_e_fail <= 0.0 and e.log_e_pass >= 0.0


def _with_synthetic_pass(e: KindEvidence) -> KindEvidence:
    return replace(e, synthetic_pass=True)


def _minutes_needed(window: Sequence[Minute], evidence: Sequence[KindEvidence], cfg: JudgeConfig, K: int) -> float | None:
    """Expected minutes until every pending kind passes, if the recent traffic and the observed rates hold:
    on user traffic, or (a representative synthetic path) on both strata together."""
    recent = list(window)[-5:]
    if not recent:
        return None
    attrs = (("candidate_requests", "stable_requests"), ("candidate_synthetic", "stable_synthetic"))
    # Per stratum: requests per minute now (candidate, stable), and in total over the window.
    now = [tuple(sum(_clean(getattr(m, a)) for m in recent) / len(recent) for a in pair) for pair in attrs]
    total = [tuple(sum(_clean(getattr(m, a)) for m in window) for a in pair) for pair in attrs]
    level = math.log(K / cfg.alpha) + math.log(len(PASS_GRID))
    worst = 0.0
    for e in evidence:
        joint = e.log_e_pass_joint is not None
        if not joint and e.user_events <= 0 and total[0][0] < cfg.min_candidate_requests:
            if now[0][0] <= 0:
                return None
            worst = max(worst, (cfg.min_candidate_requests - total[0][0]) / now[0][0])
        log_pass = e.log_e_pass_joint if joint else e.stratum_log_e_pass[0] if e.stratum_log_e_pass else None
        user_pass = e.stratum_log_e_pass[0] if e.stratum_log_e_pass else None
        if joint and not _users_show_no_fail_evidence(e) and (user_pass is None or user_pass < math.log(K / cfg.alpha)):
            return None  # the users show fail evidence: no pass on synthetic evidence while they do, and when they stop is unknown
        if log_pass is None or log_pass >= math.log(K / cfg.alpha):
            continue
        drift = [0.0] * len(PASS_GRID)  # expected log likelihood ratio per minute of each alternative
        for st in ((0, 1) if joint else (0,)):
            n_c, n_s = now[st]
            if n_c <= 0 or n_s <= 0:
                if st == 0 and not joint:
                    return None
                continue
            c = sum(m.strata(e.kind)[st][0] for m in window)
            s = sum(m.strata(e.kind)[st][1] for m in window)
            rate_s = max(s, 0.5) / max(total[st][1], 1.0)
            rate_c = max(c, 0.5) / max(total[st][0], 1.0)
            if rate_c / rate_s >= cfg.pass_ratio:
                return None
            events = rate_s * n_s + rate_c * n_c
            p0 = _share(cfg.pass_ratio, n_c, n_s)
            for i, g in enumerate(PASS_GRID):
                drift[i] += events * _kl(rate_c * n_c / events, _share(cfg.pass_ratio * g, n_c, n_s), p0)
        best = max(drift)
        if best <= 0:
            return None
        worst = max(worst, max(0.0, level - max(log_pass, 0.0)) / best)
    return worst


def _kl(p: float, p1: float, p0: float) -> float:
    """Expected log LR of p1 against p0 per event when events split with probability p."""
    return p * math.log(p1 / p0) + (1 - p) * math.log((1 - p1) / (1 - p0))


def minutes_to_detect(requests_per_minute: float, weight: int, bad_rate: float, ratio: float,
                      config: JudgeConfig = JudgeConfig(), kinds: int = 1, power: float = 0.9) -> float | None:
    """Minutes until the fail e-process reaches 1/alpha against a ``ratio`` x regression in about
    ``power`` of steps.

    Planning arithmetic, not a promise: ``requests_per_minute`` of total traffic, ``weight`` % to the
    candidate, stable's ``bad_rate`` bad events per request, Poisson counts. Each event adds a log
    likelihood ratio X of the best grid alternative; per minute the sum has mean m·E[X] and variance
    m·E[X²] (m events per minute), and the time solves mean·t - z·sd·sqrt(t) = log(G·kinds/alpha)
    with z the normal quantile of ``power``. None when it cannot be detected (no traffic, ratio not
    above the tolerated one).
    """
    n_c = requests_per_minute * weight / 100
    n_s = requests_per_minute - n_c
    if n_c <= 0 or n_s <= 0 or bad_rate <= 0 or ratio <= config.tolerated_ratio:
        return None
    events = bad_rate * (ratio * n_c + n_s)
    p = _share(ratio, n_c, n_s)
    p0 = _share(config.tolerated_ratio, n_c, n_s)
    # the mixture carries (1 - EARLY_LOOK_SHARE) of the e-value: it must reach 1/((1-λ)·alpha) on its own
    level = math.log(kinds / config.alpha) + math.log(len(FAIL_GRID)) - math.log1p(-EARLY_LOOK_SHARE)
    z = NormalDist().inv_cdf(power)
    best = None
    for g in FAIL_GRID:
        p1 = _share(config.tolerated_ratio * g, n_c, n_s)
        up, down = math.log(p1 / p0), math.log((1 - p1) / (1 - p0))
        mean = events * (p * up + (1 - p) * down)
        if mean <= 0:
            continue
        sd = math.sqrt(events * (p * up * up + (1 - p) * down * down))
        root = (z * sd + math.sqrt(z * z * sd * sd + 4 * mean * level)) / (2 * mean)
        t = root * root
        best = t if best is None or t < best else best
    return best


def bake_plan(requests_per_minute: float, bad_rate: float, weights: Sequence[int], config: JudgeConfig = JudgeConfig(),
              ratios: Sequence[float] = (2.0, 3.0), kinds: int = 2) -> list[dict]:
    """Per step: how long it must bake for the judge to catch each regression ratio (expected minutes,
    at least ``min_minutes``; None when it cannot at this traffic)."""
    rows = []
    for w in weights:
        row: dict = {"weight": w, "minutes": {}}
        for ratio in ratios:
            m = minutes_to_detect(requests_per_minute, w, bad_rate, ratio, config, kinds) if w < 100 else None
            row["minutes"][ratio] = None if m is None else max(float(config.min_minutes), m)
        rows.append(row)
    return rows


@dataclass(frozen=True)
class StepWindow:
    """The minutes the judge reads at a look: [start, end), anchored where the live weights began.

    ``start`` None: there is no valid anchor (``problem`` says why) and the judge must not be run: the
    verdict is ``insufficient``, never a fail or pass from a window that slides."""

    start: datetime | None
    end: datetime
    from_step_start: bool
    early_look_ready: bool
    problem: str = ""


def step_window(since: datetime | None, now: datetime, *, lag_minutes: int = 1) -> StepWindow:
    """The judge's window at ``now``: from the first whole minute of the current weights (``since``, the
    listener's bluegreen:weights-since stamp) to the last whole minute that ended ``lag_minutes`` ago
    (the ALB publishes a minute's counts about a minute late), for as long as the step lasts.

    The early look is ready once the step's second minute ended ``EARLY_LOOK_SETTLE_MINUTES`` ago. Pure:
    the gate and the reflex both pick their window here, so that they judge the same minutes."""
    end = now.astimezone(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=lag_minutes)
    if since is None:
        return StepWindow(None, end, False, False, "the start of the current weights is unknown (no bluegreen:weights-since "
                                                   "stamp): the judge cannot anchor its window there, and a window that "
                                                   "slides would give a fresh chance of a false verdict at every look")
    since = since.astimezone(timezone.utc)
    first = since.replace(second=0, microsecond=0)
    if first != since:
        first += timedelta(minutes=1)
    if now - first > ONE_MINUTE_RETENTION:
        return StepWindow(None, end, False, False, f"the current weights began {since:%Y-%m-%d %H:%M}Z, longer ago than "
                                                   "CloudWatch keeps one-minute data (15 days): the step can no longer be "
                                                   "read from its start")
    settled = first + timedelta(minutes=EARLY_LOOK_MINUTES + EARLY_LOOK_SETTLE_MINUTES) <= now
    return StepWindow(first, max(end, first), True, settled)
