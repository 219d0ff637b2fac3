"""Judge statistics: today's threshold gate, a Kayenta-style Mann-Whitney judge and the anytime-valid judge
(rollout.judge) on the same simulated traffic, looked at every minute.

Traffic 5/50/500 req/s, candidate weight 10/25/50 %, stable 0.5 % bad events (5xx), a 30-minute step.
Errors are Poisson, or bursty: every minute a common multiplier Gamma(shape 0.5, mean 1) scales both
colours' error rates (a shared dependency failing in bursts), and total traffic varies by ±30 %.

* threshold -- today's rule: at each look, candidate 5xx / requests over the last 5 min > 1 % fails.
* MW        -- Kayenta-style: one-sided Mann-Whitney U of the per-minute error ratios, candidate vs
               stable, at alpha 5 %, run at every look from minute 3 (every `pulumi up`, watcher
               round and `status` is a look).
* judge     -- rollout.judge: fail / pass e-processes, alpha 5 %, tolerated ratio 1, pass ratio 2.
* oracle    -- reference only: the best fixed-horizon test (conditional binomial, one look at the
               horizon, the true weights known); no sequential test can beat its power at that horizon.

Goals (issue 11): false alarms <= alpha at every traffic, weight and error model; detect 3x in >= 90 %
of runs once ~10 candidate errors are expected; detect 20x within 2 minutes at 5 req/s; never `pass`
a 3x candidate (<= alpha), nor one 3x worse on user traffic only whatever the synthetic load does, and
say `insufficient` rather than `pass` when thin; false alarms <= alpha on a step held a day. With the
opt-in (bluegreen:probe.syntheticRepresentative): never pass a 3x candidate whose regression the synthetic
requests share (<= alpha); how often a healthy thin service passes, and how often a regression that only
user requests hit passes (the blind spot the opt-in accepts), are reported.
Run: .venv/bin/python bench/judge.py [--runs N] [--seed S]   (exit 1 when a goal is missed)
"""

from __future__ import annotations

import argparse
import math
import sys

import _common  # noqa: F401
from _common import machine

import numpy as np
from scipy import stats

from rollout.judge import (EARLY_LOOK_MINUTES, EARLY_LOOK_SHARE, FAIL, FAIL_GRID, PASS, PASS_GRID, JudgeConfig, Minute,
                           early_look_rejects, fail_log_evalue, fail_log_factors, judge, mixture, pass_log_factors)

RPS = (5, 50, 500)
WEIGHTS = (10, 25, 50)
HORIZON = 30  # minutes per step
BASE = 0.005  # stable's bad-event rate per request
ALPHA = 0.05


def simulate(rng: np.random.Generator, rps: int, weight: int, ratio: float, bursty: bool, runs: int, minutes: int = HORIZON):
    """(n_s, n_c, s, c) arrays of shape (runs, minutes)."""
    mean = rps * 60 * (rng.uniform(0.7, 1.3, (runs, minutes)) if bursty else np.ones((runs, minutes)))
    total = rng.poisson(mean)
    n_c = rng.binomial(total, weight / 100)
    n_s = total - n_c
    burst = rng.gamma(0.5, 2.0, (runs, minutes)) if bursty else 1.0
    s = rng.poisson(n_s * BASE * burst)
    c = rng.poisson(n_c * BASE * ratio * burst)
    return n_s, n_c, s, c


def simulate_synthetic(rng: np.random.Generator, per_minute: int, ratio: float, runs: int, minutes: int = HORIZON,
                       base: float = BASE):
    """The synthetic stratum: ``per_minute`` requests to each colour's targets, decided in advance, failing at
    ``base`` (stable) and ``base x ratio`` (candidate). (m_s, m_c, s, c) arrays of shape (runs, minutes)."""
    m = np.full((runs, minutes), per_minute)
    return m, m.copy(), rng.binomial(m, base), rng.binomial(m, min(1.0, base * ratio))


def run_judge(n_s, n_c, s, c, cfg: JudgeConfig, synthetic=None, representative: bool = False):
    """First fail minute and first pass minute per run (HORIZON+1 = never), computed incrementally,
    with the early look (the bench's steps start where the weights changed) and an optional synthetic stratum;
    ``representative``: the operator declared the synthetic path representative (probe.syntheticRepresentative)."""
    runs, minutes = n_s.shape
    never = minutes + 1
    first_fail = np.full(runs, never)
    first_pass = np.full(runs, never)
    level = math.log(1 / cfg.alpha)
    for r in range(runs):
        fa = [0.0] * len(FAIL_GRID)
        ufa = [0.0] * len(FAIL_GRID)  # the users' own fail evidence (the guard of a pass on synthetic evidence)
        pa = [[0.0] * len(PASS_GRID) for _ in range(3)]  # per stratum, and both together (index 2, with the opt-in)
        events = [0.0, 0.0]  # per stratum, both colours
        nc_user = 0.0
        cells = []
        early = False
        for t in range(minutes):
            strata = [(float(c[r, t]), float(s[r, t]), float(n_c[r, t]), float(n_s[r, t]))]
            if synthetic is not None:
                ms, mc, ss, sc = synthetic
                strata.append((float(sc[r, t]), float(ss[r, t]), float(mc[r, t]), float(ms[r, t])))
            nc_user += strata[0][2]
            for i, (a, b, x, y) in enumerate(strata):
                events[i] += a + b
                if a + b > 0 and x > 0 and y > 0:
                    ff = fail_log_factors(a, b, x, y, cfg.tolerated_ratio)
                    fa = [u + v for u, v in zip(fa, ff)]
                    if i == 0:
                        ufa = [u + v for u, v in zip(ufa, ff)]
                    pf = pass_log_factors(a, b, x, y, cfg.pass_ratio)
                    pa[i] = [u + v for u, v in zip(pa[i], pf)]
                    pa[2] = [u + v for u, v in zip(pa[2], pf)]
            if t < EARLY_LOOK_MINUTES:
                cells += strata
                if t + 1 == EARLY_LOOK_MINUTES:
                    early = early_look_rejects(cells, cfg.tolerated_ratio, EARLY_LOOK_SHARE * cfg.alpha)
            if first_fail[r] == never and fail_log_evalue(mixture(fa), early, cfg.alpha) >= level:
                first_fail[r] = t + 1
            if first_pass[r] == never and first_fail[r] == never and t + 1 >= cfg.min_minutes:
                user_ok = (nc_user >= cfg.min_candidate_requests) if events[0] == 0 else mixture(pa[0]) >= level
                if representative and events[1] > 0:  # the joint e-process, and users with no fail evidence unless they pass
                    ok = mixture(pa[2]) >= level and (user_ok or (mixture(ufa) <= 0.0 and mixture(pa[0]) >= 0.0))
                else:  # a pass rests on user traffic alone; the synthetic stratum only adds fail evidence
                    ok = user_ok
                if ok:
                    first_pass[r] = t + 1
    return first_fail, first_pass


def check_against_judge(n_s, n_c, s, c, cfg, first_fail, first_pass, rows: int = 3, synthetic=None, representative: bool = False) -> None:
    """The incremental loop above must agree with rollout.judge.judge on whole windows."""
    for r in range(min(rows, n_s.shape[0])):
        for t in sorted({t for t in (EARLY_LOOK_MINUTES, cfg.min_minutes, n_s.shape[1]) if t <= n_s.shape[1]}):
            ms = []
            for i in range(t):
                syn = {}
                if synthetic is not None:
                    m_s, m_c, ss, sc = synthetic
                    syn = dict(stable_synthetic=float(m_s[r, i]), candidate_synthetic=float(m_c[r, i]),
                               stable_synthetic_bad={"errors": float(ss[r, i])}, candidate_synthetic_bad={"errors": float(sc[r, i])})
                ms.append(Minute(float(n_s[r, i]), float(n_c[r, i]), {"errors": float(s[r, i])}, {"errors": float(c[r, i])}, **syn))
            v = judge(ms, cfg, kinds=("errors",), from_step_start=True, synthetic_representative=representative).verdict
            if v == FAIL:
                assert first_fail[r] <= t, (r, t, v, first_fail[r])
            if first_fail[r] == t:
                assert v == FAIL, (r, t, v, first_fail[r])
            if first_fail[r] > t and v == PASS:
                assert first_pass[r] <= t, (r, t, v, first_pass[r])
            if first_fail[r] > t and first_pass[r] == t:
                assert v == PASS, (r, t, v, first_pass[r])


def threshold_first_alarm(n_c, c, limit: float = 0.01, window: int = 5):
    runs, minutes = n_c.shape
    first = np.full(runs, minutes + 1)
    for t in range(minutes):
        lo = max(0, t + 1 - window)
        req = n_c[:, lo:t + 1].sum(axis=1)
        err = c[:, lo:t + 1].sum(axis=1)
        bad = (req > 0) & (err > limit * np.maximum(req, 1))
        first = np.where((first > minutes) & bad, t + 1, first)
    return first


def mw_first_alarm(n_s, n_c, s, c, alpha: float = ALPHA, start: int = 3):
    runs, minutes = n_c.shape
    first = np.full(runs, minutes + 1)
    rc = np.where(n_c > 0, c / np.maximum(n_c, 1), 0.0)
    rs = np.where(n_s > 0, s / np.maximum(n_s, 1), 0.0)
    for t in range(start, minutes + 1):
        with np.errstate(all="ignore"):
            p = stats.mannwhitneyu(rc[:, :t], rs[:, :t], alternative="greater", axis=1, method="asymptotic").pvalue
        bad = np.nan_to_num(p, nan=1.0) < alpha
        first = np.where((first > minutes) & bad, t, first)
    return first


def oracle_power(n_s, n_c, s, c, weight: int, ratio: float, at: int, alpha: float = ALPHA) -> float:
    """Power of the one-look conditional binomial test at minute ``at`` (the weights are known), on the simulated runs."""
    p0 = weight / 100
    E = (s[:, :at] + c[:, :at]).sum(axis=1)
    k = c[:, :at].sum(axis=1)
    pval = stats.binom.sf(k - 1, E, p0)
    return float(np.mean(pval <= alpha))


def oracle_exact(rps: float, weight: int, ratio: float, minutes: float, alpha: float = ALPHA, base: float = BASE) -> float:
    """The same one-look oracle computed exactly, not simulated: the bad events in ``minutes`` are Poisson
    (mean rate x requests of each colour at the expected split), the candidate's share of E events is
    Binomial(E, p) with p = r·n_c/(r·n_c + n_s), and the test rejects when P(Binomial(E, w) >= k) <= alpha."""
    n_c = rps * 60 * minutes * weight / 100
    n_s = rps * 60 * minutes - n_c
    lam_c, lam_s = n_c * base * ratio, n_s * base
    lam, p, p0 = lam_c + lam_s, lam_c / (lam_c + lam_s), weight / 100
    top = int(stats.poisson.isf(1e-12, lam)) + 2
    E = np.arange(1, top + 1)
    crit = stats.binom.isf(alpha, E, p0) + 1  # smallest k with P(X >= k) <= alpha (isf gives the largest k with sf > alpha)
    crit = np.where(stats.binom.sf(crit - 1, E, p0) <= alpha, crit, crit + 1)
    return float(np.sum(stats.poisson.pmf(E, lam) * stats.binom.sf(crit - 1, E, p)))


def oracle_errors_for(power: float, rps: float, weight: int, ratio: float, alpha: float = ALPHA) -> float:
    """Expected candidate errors at which the exact one-look oracle first reaches ``power`` (bisection on the look's time)."""
    per_min = rps * 60 * weight / 100 * BASE * ratio
    lo, hi = 0.01, 1.0
    while oracle_exact(rps, weight, ratio, hi / per_min, alpha) < power:
        hi *= 2
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if oracle_exact(rps, weight, ratio, mid / per_min, alpha) < power else (lo, mid)
    return hi


def pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _within(first: np.ndarray, limit: float, misses: list[str], what: str) -> float:
    """The share of runs whose first event came within the horizon; a miss is recorded when it is above ``limit``."""
    rate = float(np.mean(first <= HORIZON))
    if rate > limit:
        misses.append(f"{what}: {pct(rate)} > {limit:.1%}")
    return rate


THIN = (5, 10)  # (req/s, weight %): the thin service of the synthetic-load rows
SYNTHETIC = (60, 300, 1000)  # synthetic requests per minute to each colour
PASS_WITHIN = (10, 20, 30)  # minutes
LONG_STEP = 1440  # minutes: a step held a day


def main(runs: int = 400, seed: int = 11) -> int:
    rng = np.random.default_rng(seed)
    cfg = JudgeConfig(alpha=ALPHA, tolerated_ratio=1.0, pass_ratio=2.0, min_minutes=5, max_minutes=120)  # the longest step simulated is 65 min
    slack = ALPHA + 2.576 * math.sqrt(ALPHA * (1 - ALPHA) / runs)  # 99 % binomial upper bound around alpha
    power_floor = 0.9 - 2.576 * math.sqrt(0.9 * 0.1 / runs)  # 99 % binomial lower bound around 90 %
    lines = [
        f"{runs} simulated 30-minute steps per cell, seed {seed}, a look every minute; stable {BASE:.1%} bad events; "
        f"judge alpha {ALPHA:g} (half on the mixture, half on one early look at minute {EARLY_LOOK_MINUTES}), tolerated ratio "
        f"{cfg.tolerated_ratio:g}, pass ratio {cfg.pass_ratio:g}, min {cfg.min_minutes} min. "
        f"False alarms are judged against alpha + binomial slack = {slack:.1%}; a power goal of 90 % against {power_floor:.1%}.",
        "",
        "| req/s | weight | false alarms Poisson: threshold / MW / judge | false alarms bursty: threshold / MW / judge "
        "| 3x detected by ~10 expected errors (min): threshold / MW / judge / oracle simulated / oracle exact "
        "| oracle 90 % at (errors) | 3x detected by 2x that (min): judge / oracle exact | 3x passed (judge) "
        "| healthy at 30 min: pass / insufficient (judge) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    misses: list[str] = []
    worst_fa = 0.0
    det_judge: list[tuple[float, str]] = []
    det_oracle: list[float] = []
    restated: list[tuple[float, str]] = []
    false_pass_max = 0.0
    thin_pass = None
    for rps in RPS:
        for w in WEIGHTS:
            cell = f"{rps} req/s, {w} %"
            fa = {}
            for bursty in (False, True):
                n_s, n_c, s, c = simulate(rng, rps, w, 1.0, bursty, runs)
                ff, fp = run_judge(n_s, n_c, s, c, cfg)
                check_against_judge(n_s, n_c, s, c, cfg, ff, fp)
                fa[bursty] = (
                    np.mean(threshold_first_alarm(n_c, c) <= HORIZON),
                    np.mean(mw_first_alarm(n_s, n_c, s, c) <= HORIZON),
                    np.mean(ff <= HORIZON),
                )
                worst_fa = max(worst_fa, fa[bursty][2])
                if fa[bursty][2] > slack:
                    misses.append(f"false alarms {pct(fa[bursty][2])} > {slack:.1%} at {cell}, {'bursty' if bursty else 'Poisson'}")
                if not bursty:
                    healthy = (np.mean(fp <= HORIZON), np.mean((fp > HORIZON) & (ff > HORIZON)))
            per_min_c = rps * 60 * w / 100 * BASE * 3
            t10 = max(1, math.ceil(10 / per_min_c))
            n90 = oracle_errors_for(0.9, rps, w, 3.0)
            t2x = max(1, math.ceil(2 * n90 / per_min_c))
            horizon = max(HORIZON, t10, t2x)
            n_s, n_c, s, c = simulate(rng, rps, w, 3.0, False, runs, horizon)
            ff, fp = run_judge(n_s, n_c, s, c, cfg)
            det = (
                np.mean(threshold_first_alarm(n_c, c) <= t10),
                np.mean(mw_first_alarm(n_s, n_c, s, c) <= t10),
                np.mean(ff <= t10),
                oracle_power(n_s, n_c, s, c, w, 3.0, t10),
                oracle_exact(rps, w, 3.0, t10),
            )
            det_judge.append((det[2], cell))
            det_oracle.append(det[4])
            at2x = (float(np.mean(ff <= t2x)), oracle_exact(rps, w, 3.0, t2x))
            restated.append((at2x[0], cell))
            false_pass = float(np.mean(fp <= horizon))
            false_pass_max = max(false_pass_max, false_pass)
            if false_pass > slack:
                misses.append(f"a 3x candidate passed in {pct(false_pass)} of runs at {cell}")
            if (rps, w) == THIN:
                thin_pass = healthy[0]
            lines.append(
                f"| {rps} | {w} % | {' / '.join(pct(x) for x in fa[False])} | {' / '.join(pct(x) for x in fa[True])} "
                f"| ({t10}) {' / '.join(pct(x) for x in det)} | {n90:.1f} | ({t2x}) {pct(at2x[0])} / {pct(at2x[1])} "
                f"| {pct(false_pass)} | {pct(healthy[0])} / {pct(healthy[1])} |"
            )

    # 20x at 5 req/s within 2 minutes
    fast = []
    for w in WEIGHTS:
        n_s, n_c, s, c = simulate(rng, 5, w, 20.0, False, runs, 2)
        ff, _ = run_judge(n_s, n_c, s, c, cfg)
        check_against_judge(n_s, n_c, s, c, cfg, ff, ff)
        fast.append((w, np.mean(threshold_first_alarm(n_c, c) <= 2), np.mean(ff <= 2), oracle_exact(5, w, 20.0, 2)))
    lines += ["", "| 20x at 5 req/s | threshold detects within 2 min | judge detects within 2 min | one-look oracle at 2 min (exact) |",
              "|---|---|---|---|"]
    lines += [f"| {w} % | {pct(t)} | {pct(j)} | {pct(o)} |" for w, t, j, o in fast]

    # a thin service with synthetic load: the same healthy candidate, with and without the synthetic stratum
    rps, w = THIN
    lines += ["", f"| thin service ({rps} req/s, {w} %), synthetic requests per minute per colour | false alarms | "
              + " | ".join(f"healthy passes within {m} min" for m in PASS_WITHIN)
              + " | 3x detected within 10 min | 3x passed | users 3x, synthetic healthy: passed |",
              "|---|---|" + "---|" * len(PASS_WITHIN) + "---|---|---|"]
    synthetic_rows = []
    for per_minute in (0, *SYNTHETIC):
        row = []
        for ratio in (1.0, 3.0):
            n_s, n_c, s, c = simulate(rng, rps, w, ratio, False, runs)
            syn = simulate_synthetic(rng, per_minute, ratio, runs) if per_minute else None
            ff, fp = run_judge(n_s, n_c, s, c, cfg, synthetic=syn)
            check_against_judge(n_s, n_c, s, c, cfg, ff, fp, synthetic=syn)
            row.append((ff, fp))
        (ff0, fp0), (ff3, fp3) = row
        n_s, n_c, s, c = simulate(rng, rps, w, 3.0, False, runs)  # a regression in user traffic only
        syn = simulate_synthetic(rng, per_minute, 1.0, runs) if per_minute else None
        _, fp_user = run_judge(n_s, n_c, s, c, cfg, synthetic=syn)
        user_only_pass = _within(fp_user, slack, misses, f"a user-only 3x regression passed with {per_minute} synthetic requests per minute")
        fa_syn = _within(ff0, slack, misses, f"false alarms with {per_minute} synthetic requests per minute")
        worst_fa = max(worst_fa, fa_syn)
        passes = [float(np.mean(fp0 <= m)) for m in PASS_WITHIN]
        false_pass = float(np.mean(fp3 <= HORIZON))
        false_pass_max = max(false_pass_max, false_pass, user_only_pass)
        synthetic_rows.append((per_minute, passes))
        lines.append(f"| {per_minute or 'none'} | {pct(fa_syn)} | " + " | ".join(pct(x) for x in passes)
                     + f" | {pct(float(np.mean(ff3 <= 10)))} | {pct(false_pass)} | {pct(user_only_pass)} |")

    # the opt-in (probe.syntheticRepresentative): a pass may rest on the synthetic stratum while the users show no fail
    # evidence. Healthy; 3x on user and synthetic requests alike (the declared assumption holds: the false-pass bound);
    # 3x on user requests only (the assumption broken: the blind spot, reported, not a goal).
    lines += ["", f"| thin service opted in (bluegreen:probe.syntheticRepresentative), {rps} req/s | weight | synthetic requests "
              "per minute per colour | false alarms | " + " | ".join(f"healthy passes within {m} min" for m in PASS_WITHIN)
              + " | 3x on user and synthetic requests: passed | 3x on user requests only (blind spot): passed | same, detected |",
              "|---|---|---|---|" + "---|" * len(PASS_WITHIN) + "---|---|---|"]
    opted: list[tuple[int, int, float]] = []
    for ow in WEIGHTS:
        for per_minute in SYNTHETIC:
            n_s, n_c, s, c = simulate(rng, rps, ow, 1.0, False, runs)
            syn = simulate_synthetic(rng, per_minute, 1.0, runs)
            ff0, fp0 = run_judge(n_s, n_c, s, c, cfg, synthetic=syn, representative=True)
            check_against_judge(n_s, n_c, s, c, cfg, ff0, fp0, synthetic=syn, representative=True)
            n_s, n_c, s, c = simulate(rng, rps, ow, 3.0, False, runs)
            syn = simulate_synthetic(rng, per_minute, 3.0, runs)
            _, fp3 = run_judge(n_s, n_c, s, c, cfg, synthetic=syn, representative=True)
            n_s, n_c, s, c = simulate(rng, rps, ow, 3.0, False, runs)
            syn = simulate_synthetic(rng, per_minute, 1.0, runs)
            ffu, fpu = run_judge(n_s, n_c, s, c, cfg, synthetic=syn, representative=True)
            check_against_judge(n_s, n_c, s, c, cfg, ffu, fpu, synthetic=syn, representative=True)
            fa_opt = _within(ff0, slack, misses, f"false alarms opted in at {ow} % with {per_minute} synthetic requests")
            both = _within(fp3, slack, misses, f"opted in, a 3x regression on user and synthetic requests passed at {ow} %, {per_minute}/min")
            worst_fa, false_pass_max = max(worst_fa, fa_opt), max(false_pass_max, both)
            passes = [float(np.mean(fp0 <= m)) for m in PASS_WITHIN]
            opted.append((ow, per_minute, passes[-1]))
            lines.append(f"| | {ow} % | {per_minute} | {pct(fa_opt)} | " + " | ".join(pct(x) for x in passes)
                         + f" | {pct(both)} | {pct(float(np.mean(fpu <= HORIZON)))} | {pct(float(np.mean(ffu <= HORIZON)))} |")

    # a synthetic path that fails ten times as often as user requests: judged apart it stays valid; pooled it would not
    odd = 10 * BASE
    lines += ["", f"| healthy thin service, 300 synthetic requests a minute per colour failing at {odd:.0%} (users {BASE:.1%}) "
              "| false alarms, strata judged apart | false alarms, synthetic counts pooled into the ALB counts |", "|---|---|---|"]
    n_s, n_c, s, c = simulate(rng, rps, w, 1.0, False, runs)
    m_s, m_c, ss, sc = simulate_synthetic(rng, 300, 1.0, runs, base=odd)
    apart, _ = run_judge(n_s, n_c, s, c, cfg, synthetic=(m_s, m_c, ss, sc))
    pooled, _ = run_judge(n_s + m_s, n_c + m_c, s + ss, c + sc, cfg)
    fa_apart, fa_pooled = float(np.mean(apart <= HORIZON)), float(np.mean(pooled <= HORIZON))
    worst_fa = max(worst_fa, fa_apart)
    if fa_apart > slack:
        misses.append(f"false alarms {pct(fa_apart)} > {slack:.1%} with a synthetic path failing at {odd:.0%}")
    lines.append(f"| {rps} req/s, {w} % | {pct(fa_apart)} | {pct(fa_pooled)} |")

    # a healthy candidate held a day at one step, looked at every minute: the window anchored at the step's start
    long_runs = max(20, runs // 4)
    n_s, n_c, s, c = simulate(rng, 5, 10, 1.0, False, long_runs, LONG_STEP)
    ff_long, _ = run_judge(n_s, n_c, s, c, cfg)
    fa_long = float(np.mean(ff_long <= LONG_STEP))
    long_slack = ALPHA + 2.576 * math.sqrt(ALPHA * (1 - ALPHA) / long_runs)
    if fa_long > long_slack:
        misses.append(f"false alarms {pct(fa_long)} > {long_slack:.1%} over a {LONG_STEP}-minute step")
    lines += ["", f"| healthy candidate held {LONG_STEP} min at one step (5 req/s, 10 %), a look every minute, {long_runs} steps "
              "| false alarms, window anchored at the step's start |", "|---|---|",
              f"| {long_runs} steps | {pct(fa_long)} (a window sliding at 60 min: 25 % in the review's reproduction) |"]

    lines.append("")
    lines.append(f"- goal false alarms <= alpha (+ slack {slack:.1%}) everywhere, Poisson and bursty, with and without synthetic "
                 f"load: worst {pct(worst_fa)} -> " + ("met" if worst_fa <= slack else "MISSED"))
    low = min(det_judge)
    lines.append(f"- issue goal \"detect 3x in >= 90 % once ~10 candidate errors are expected\": infeasible. The exact one-look oracle "
                 f"(Poisson errors, binomial split, the weights known, alpha {ALPHA:g}) reaches only {pct(min(det_oracle))}-"
                 f"{pct(max(det_oracle))} at that horizon, and no test valid at alpha can beat it at a fixed horizon. "
                 f"The judge reaches {pct(low[0])} at worst ({low[1]}) -> reported, not judged")
    worst2x = min(restated)
    lines.append(f"- restated goal: detect 3x in >= 90 % once twice the errors the one-look oracle needs for 90 % are expected "
                 f"(the price of looking every minute without knowing the ratio): worst {pct(worst2x[0])} ({worst2x[1]}) -> "
                 + ("met" if worst2x[0] >= power_floor else "MISSED"))
    worst_fast = min(j for _, _, j, _ in fast)
    lines.append(f"- goal detect 20x within 2 min at 5 req/s: worst {pct(worst_fast)} (the one-look oracle: "
                 f"{pct(min(o for *_, o in fast))}) -> " + ("met" if worst_fast >= power_floor else "MISSED"))
    lines.append(f"- goal never pass a 3x candidate (<= alpha): worst {pct(false_pass_max)}; thin ({THIN[0]} req/s, {THIN[1]} %) healthy "
                 f"candidates pass in {pct(thin_pass or 0)} and stay insufficient otherwise -> "
                 + ("met" if false_pass_max <= slack and (thin_pass or 0) <= 0.5 else "MISSED"))
    lines.append(f"- goal false alarms <= alpha on a step held {LONG_STEP} min: {pct(fa_long)} (slack {long_slack:.1%}) -> "
                 + ("met" if fa_long <= long_slack else "MISSED"))
    lines.append("- synthetic load no longer earns a thin service a pass (a pass rests on user traffic alone): "
                 "healthy passes within " + f"{PASS_WITHIN[-1]} min: "
                 + ", ".join(f"{pct(p[-1])} with {n or 'no'} synthetic requests" for n, p in synthetic_rows) + " -> reported")
    lines.append("- opted in (bluegreen:probe.syntheticRepresentative), healthy thin service, passes within "
                 f"{PASS_WITHIN[-1]} min: " + ", ".join(f"{pct(p)} at {w} % with {n}" for w, n, p in opted)
                 + "; the false-pass bound under the declared assumption is judged in the goal above -> reported")
    print("\n".join(["### judge statistics", "", f"Machine: {machine()}", "", *lines]))
    if worst2x[0] < power_floor:
        misses.append(f"3x detected in {pct(worst2x[0])} at twice the oracle's errors at {worst2x[1]}")
    if worst_fast < power_floor:
        misses.append(f"20x within 2 min at 5 req/s detected in {pct(worst_fast)}")
    if thin_pass is not None and thin_pass > 0.5:
        misses.append(f"thin healthy candidates pass in {pct(thin_pass)}")
    if misses:
        print("missed: " + "; ".join(misses), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=400)
    ap.add_argument("--seed", type=int, default=11)
    a = ap.parse_args()
    sys.exit(main(a.runs, a.seed))
