"""A/B statistics: per branch of every router node and of a deployment's `traffic` split.

Every worker counts in memory (`Experiments`, a few increments per request on the data plane);
the control plane publishes the counts to the state store about once a second and on shutdown
(`take` + `merge`: only what was counted since the last publish is added, so the stored value
is the whole server's, whichever worker served which request), and `seldon get` / Prometheus
turn the stored counts into statistics (`summarize`).

What is kept per branch: requests, errors, a latency histogram (fixed log-spaced buckets, 20
per decade, so that workers' histograms add up), feedback count, reward sum and sum of squares,
and how many rewards were neither 0 nor 1 (any such reward makes the experiment's test Welch's).
Counts belong to one generation of a deployment (`epoch` = (creation time, generation)): an apply
that changes the deployment starts them from zero; a restart keeps them.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from seldon_serving.components.distributions import beta_cdf, bisect
from seldon_serving.engine.deployment import Deployment, Predictor
from seldon_serving.engine.graph import GraphNode
from seldon_serving.protocol.errors import ServingError
from seldon_serving.protocol.message import Feedback, SeldonMessage

NAMESPACE = "seldon.experiments"  # state-store namespace; key "<namespace>/<name>"
ALPHA = "seldon.io/experiment-alpha"
POWER = "seldon.io/experiment-power"
MIN_EFFECT = "seldon.io/experiment-min-effect"
DEFAULT_ALPHA = 0.05
DEFAULT_POWER = 0.8
Z_TEST = "two-proportion z-test"
WELCH = "Welch's t-test"
TRAFFIC = "traffic"
ROUTER = "router"

# Latency histogram: bucket i holds [1 us * 10^(i/20), 1 us * 10^((i+1)/20)); 200 buckets reach
# 10^4 s.  Quantiles interpolate geometrically inside a bucket: within 6% of the true value.
_PER_DECADE = 20
_FLOOR = 1e-6
_BUCKETS = 200
_LOG_FLOOR = math.log10(_FLOOR)

Epoch = tuple[float, int]
log = logging.getLogger("seldon_serving.experiments")


class ExperimentConfigError(ServingError):
    """An experiment annotation that is not a usable number."""


@dataclass(frozen=True, slots=True)
class Config:
    alpha: float = DEFAULT_ALPHA
    power: float = DEFAULT_POWER
    min_effect: float | None = None  # the effect the sample size is planned for; None: the observed one


def config_from(*annotation_maps: dict[str, str] | None) -> Config:
    """The experiment settings of a deployment's annotations (later maps win)."""
    merged: dict[str, str] = {}
    for found in annotation_maps:
        merged.update(found or {})
    alpha = _fraction(merged, ALPHA, DEFAULT_ALPHA)
    power = _fraction(merged, POWER, DEFAULT_POWER)
    min_effect = None
    if MIN_EFFECT in merged:
        min_effect = _number(merged, MIN_EFFECT)
        if not min_effect > 0:
            raise ExperimentConfigError(
                f"annotation {MIN_EFFECT} must be a positive number, got {merged[MIN_EFFECT]!r}"
            )
    return Config(alpha, power, min_effect)


def deployment_config(deployment: Deployment) -> Config:
    sdep = deployment.manifest
    return config_from(sdep.metadata.annotations, sdep.spec.annotations)


def _number(annotations: dict[str, str], name: str) -> float:
    try:
        return float(annotations[name])
    except (TypeError, ValueError):
        raise ExperimentConfigError(
            f"annotation {name} must be a number, got {annotations[name]!r}"
        ) from None


def _fraction(annotations: dict[str, str], name: str, default: float) -> float:
    if name not in annotations:
        return default
    value = _number(annotations, name)
    if not 0.0 < value < 1.0:
        raise ExperimentConfigError(
            f"annotation {name} must be a number between 0 and 1 (exclusive), got {annotations[name]!r}"
        )
    return value


# --- counting (per worker, on the event loop: no locks) ------------------------------------------


def latency_bucket(seconds: float) -> int:
    if seconds <= _FLOOR:
        return 0
    index = int((math.log10(seconds) - _LOG_FLOOR) * _PER_DECADE)
    return index if index < _BUCKETS else _BUCKETS - 1


class _Branch:
    __slots__ = ("errors", "feedback", "latency", "non_binary", "requests", "reward_sq", "reward_sum")

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.latency: dict[int, int] = {}
        self.feedback = 0
        self.reward_sum = 0.0
        self.reward_sq = 0.0
        self.non_binary = 0

    def served(self, bucket: int) -> None:
        self.requests += 1
        latency = self.latency
        latency[bucket] = latency.get(bucket, 0) + 1

    def rewarded(self, reward: float) -> None:
        self.feedback += 1
        self.reward_sum += reward
        self.reward_sq += reward * reward
        if reward != 0.0 and reward != 1.0:
            self.non_binary += 1

    def take(self) -> dict[str, Any]:
        """What was counted since the last take, as stored; counting starts again from zero."""
        out = {
            "requests": self.requests,
            "errors": self.errors,
            "latency": {str(k): v for k, v in self.latency.items()},
            "feedback": self.feedback,
            "reward_sum": self.reward_sum,
            "reward_sq": self.reward_sq,
            "non_binary": self.non_binary,
        }
        self.requests = self.errors = self.feedback = self.non_binary = 0
        self.latency = {}
        self.reward_sum = self.reward_sq = 0.0
        return out


class _Experiment:
    __slots__ = ("branches", "kind", "names", "node", "predictor", "unattributed")

    def __init__(self, kind: str, predictor: str, node: str, names: list[str]) -> None:
        self.kind = kind
        self.predictor = predictor
        self.node = node
        self.names = names
        self.branches = [_Branch() for _ in names]
        self.unattributed = 0  # traffic split: feedback whose predictor could not be told

    def take(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "predictor": self.predictor,
            "node": self.node,
            "branches": list(self.names),
            "counts": {name: branch.take() for name, branch in zip(self.names, self.branches, strict=True)},
            "unattributed": self._take_unattributed(),
        }

    def _take_unattributed(self) -> int:
        n, self.unattributed = self.unattributed, 0
        return n


def _routers(root: GraphNode) -> list[GraphNode]:
    return [n for n in root.walk() if n.does_route and len(n.children) >= 2]


class Tally:
    """One deployment's counts in one worker, since the last publish."""

    __slots__ = (
        "config",
        "dirty",
        "epoch",
        "key",
        "owners",
        "routers",
        "serving",
        "traffic",
        "traffic_index",
    )

    def __init__(self, deployment: Deployment, epoch: Epoch, config: Config) -> None:
        self.key = f"{deployment.namespace}/{deployment.name}"
        self.epoch = epoch
        self.config = config
        self.dirty = True  # the first publish stores the experiments' shape, counts or not
        self.serving = [p for p in deployment.predictors if not p.shadow]
        self.traffic: _Experiment | None = None
        self.traffic_index: dict[Predictor, int] = {}
        if len(self.serving) >= 2:
            self.traffic = _Experiment(TRAFFIC, "", "", [p.name for p in self.serving])
            self.traffic_index = {p: i for i, p in enumerate(self.serving)}
        self.routers: dict[Predictor, dict[str, _Experiment]] = {}
        # Per predictor, node name -> (router experiment, branch) of every router above that node:
        # a request failing at a node is an error of the branches that led to it.
        self.owners: dict[Predictor, dict[str, list[tuple[_Experiment, int]]]] = {}
        for predictor in deployment.predictors:
            found = _routers(predictor.root)
            if not found:
                continue
            experiments = {}
            owners: dict[str, list[tuple[_Experiment, int]]] = {}
            for router in found:
                exp = _Experiment(ROUTER, predictor.name, router.name, [c.name for c in router.children])
                experiments[router.name] = exp
                for index, child in enumerate(router.children):
                    for node in child.walk():
                        owners.setdefault(node.name, []).append((exp, index))
            self.routers[predictor] = experiments
            self.owners[predictor] = owners

    def answered(self, predictor: Predictor, answer: SeldonMessage, seconds: float) -> None:
        bucket = latency_bucket(seconds)
        self.dirty = True
        if self.traffic is not None:
            self.traffic.branches[self.traffic_index[predictor]].served(bucket)
        routers = self.routers.get(predictor)
        if routers is None:
            return
        routing = answer.meta.get("routing")
        if not routing:
            return
        for node, branch in routing.items():
            exp = routers.get(node)
            if exp is not None and type(branch) is int and 0 <= branch < len(exp.branches):
                exp.branches[branch].served(bucket)

    def failed(self, predictor: Predictor, error: BaseException, seconds: float) -> None:
        bucket = latency_bucket(seconds)
        self.dirty = True
        if self.traffic is not None:
            branch = self.traffic.branches[self.traffic_index[predictor]]
            branch.served(bucket)
            branch.errors += 1
        node = getattr(error, "node", None)
        owners = self.owners.get(predictor)
        if node is None or owners is None:
            return
        for exp, index in owners.get(node, ()):
            branch = exp.branches[index]
            branch.served(bucket)
            branch.errors += 1

    def rewarded(self, predictor: Predictor, feedback: Feedback) -> None:
        reward = feedback.reward
        if not isinstance(reward, int | float) or not math.isfinite(reward):
            return
        reward = float(reward)
        self.dirty = True
        if self.traffic is not None:
            if self._attributable(feedback):
                self.traffic.branches[self.traffic_index[predictor]].rewarded(reward)
            else:
                self.traffic.unattributed += 1
        routers = self.routers.get(predictor)
        if routers is None:
            return
        for node, branch in feedback.routing().items():
            exp = routers.get(node)
            if exp is not None and type(branch) is int and 0 <= branch < len(exp.branches):
                exp.branches[branch].rewarded(reward)

    def _attributable(self, feedback: Feedback) -> bool:
        """Whether the response names its predictor: one predictor's nodes (and images) match its
        routing and requestPath better than any other's.  Otherwise the data plane picked one by
        the traffic split, which says nothing about who answered."""
        if feedback.response is None:
            return False
        path = feedback.response.meta.get("requestPath") or {}
        names = set(feedback.routing()) | set(path)
        if not names:
            return False
        pairs = set(path.items())
        scores = sorted(
            ((len(p.node_paths & pairs), len(p.node_names & names)) for p in self.serving), reverse=True
        )
        return scores[0] != (0, 0) and scores[0] != scores[1]

    def take(self) -> dict[str, Any]:
        experiments: dict[str, Any] = {}
        if self.traffic is not None:
            experiments[TRAFFIC] = self.traffic.take()
        for predictor, routers in self.routers.items():
            for node, exp in routers.items():
                experiments[f"{ROUTER}/{predictor.name}/{node}"] = exp.take()
        self.dirty = False
        return {
            "epoch": list(self.epoch),
            "alpha": self.config.alpha,
            "power": self.config.power,
            "min_effect": self.config.min_effect,
            "experiments": experiments,
        }


class Experiments:
    """Every deployment's tally in this worker, looked up by the Deployment object itself (a
    request finishing on a swapped-out deployment is not counted)."""

    def __init__(self) -> None:
        self.tallies: dict[Deployment, Tally] = {}

    def track(self, deployment: Deployment, epoch: Epoch) -> None:
        """Count `deployment`'s experiments (if it has any) from now on."""
        self.forget(deployment.namespace, deployment.name)
        try:
            config = deployment_config(deployment)
        except ExperimentConfigError as exc:
            # Refused by `seldon apply`; one given to `seldon serve` at start-up gets the defaults.
            log.warning("deployment %s: %s; the A/B statistics use the defaults", deployment.name, exc)
            config = Config()
        tally = Tally(deployment, epoch, config)
        if tally.traffic is not None or tally.routers:
            self.tallies[deployment] = tally

    def forget(self, namespace: str, name: str) -> None:
        for deployment in [d for d in self.tallies if d.namespace == namespace and d.name == name]:
            del self.tallies[deployment]

    def take(self) -> list[tuple[str, dict[str, Any]]]:
        """(store key, counts since the last take) of every deployment that counted something."""
        return [(t.key, t.take()) for t in self.tallies.values() if t.dirty]


# --- merging (pure: a store may run an updater more than once) -----------------------------------


def merge(current: Any, delta: dict[str, Any]) -> dict[str, Any]:
    """`current` (a stored value, or None) with `delta` added; a delta of an older epoch is
    dropped, one of a newer epoch replaces what is stored."""
    if not isinstance(current, dict) or _epoch(current) < _epoch(delta):
        fresh: dict[str, Any] = _copy(delta)
        return fresh
    if _epoch(current) > _epoch(delta):
        return current
    out = dict(current)
    out.update({k: delta[k] for k in ("alpha", "power", "min_effect") if k in delta})
    experiments = dict(current.get("experiments") or {})
    for key, exp in delta["experiments"].items():
        mine = experiments.get(key)
        if mine is None:
            experiments[key] = _copy(exp)
            continue
        mine = dict(mine)
        counts = dict(mine["counts"])
        for name, added in exp["counts"].items():
            counts[name] = _add(counts.get(name), added)
        names = list(mine["branches"])
        names.extend(n for n in exp["branches"] if n not in names)
        mine.update(
            branches=names, counts=counts, unattributed=mine.get("unattributed", 0) + exp["unattributed"]
        )
        experiments[key] = mine
    out["experiments"] = experiments
    return out


def _epoch(value: dict[str, Any]) -> tuple[float, int]:
    created, generation = value.get("epoch") or (0.0, 0)
    return float(created), int(generation)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _add(base: dict[str, Any] | None, added: dict[str, Any]) -> dict[str, Any]:
    if base is None:
        fresh: dict[str, Any] = _copy(added)
        return fresh
    latency = dict(base["latency"])
    for bucket, n in added["latency"].items():
        latency[bucket] = latency.get(bucket, 0) + n
    out = {
        k: base[k] + added[k]
        for k in ("requests", "errors", "feedback", "reward_sum", "reward_sq", "non_binary")
    }
    out["latency"] = latency
    return out


# --- statistics ----------------------------------------------------------------------------------

_NORMAL = NormalDist()


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    return beta_cdf(x, a, b)


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with `df` degrees of freedom."""
    if math.isinf(df):
        return math.erfc(abs(t) / math.sqrt(2.0))
    return incomplete_beta(df / 2.0, 0.5, df / (df + t * t))


def t_quantile(q: float, df: float) -> float:
    """The q-quantile (q > 0.5) of Student's t, by bisection of `t_two_sided_p`."""
    target = 2.0 * (1.0 - q)
    low, high = 0.0, 1.0
    while t_two_sided_p(high, df) > target:
        low, high = high, high * 2.0
    return bisect(lambda t: t_two_sided_p(t, df) > target, low, high)


def wilson_interval(successes: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval of a proportion (good at small n and near 0 or 1, unlike Wald's)."""
    z = _NORMAL.inv_cdf(0.5 + confidence / 2.0)
    p = successes / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2.0 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def t_interval(mean: float, variance: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """mean +- t(n-1) * s / sqrt(n)."""
    half = t_quantile(0.5 + confidence / 2.0, n - 1) * math.sqrt(variance / n)
    return mean - half, mean + half


def two_proportion_z(s1: float, n1: int, s2: float, n2: int) -> tuple[float, float] | None:
    """(z, two-sided p) of the pooled two-proportion z-test of s1/n1 vs s2/n2, or None when
    every reward is equal (no variance to test against)."""
    pooled = (s1 + s2) / (n1 + n2)
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2))
    if se == 0.0:
        return None
    z = (s1 / n1 - s2 / n2) / se
    return z, math.erfc(abs(z) / math.sqrt(2.0))  # 1 - cdf would lose the tail's digits


def welch(m1: float, v1: float, n1: int, m2: float, v2: float, n2: int) -> tuple[float, float, float] | None:
    """(t, degrees of freedom, two-sided p) of Welch's t-test, or None without variance."""
    a, b = v1 / n1, v2 / n2
    if a + b == 0.0:
        return None
    t = (m1 - m2) / math.sqrt(a + b)
    df = (a + b) ** 2 / (a * a / (n1 - 1) + b * b / (n2 - 1))
    return t, df, t_two_sided_p(t, df)


def sample_sizes(
    p_or_var: tuple[float, float], effect: float, ratio: float, alpha: float, power: float, binary: bool
) -> tuple[float, float] | None:
    """Feedback needed per branch (n1, n2 = ratio * n1) for a two-sided test at `alpha` to find
    `effect` with probability `power` (normal approximation):

    - 0/1 rewards (rates p1, p2; p = (p1 + r p2) / (1 + r)):
      n1 = (z_{1-a/2} sqrt(p(1-p)(1 + 1/r)) + z_{power} sqrt(p1(1-p1) + p2(1-p2)/r))^2 / effect^2
    - otherwise (variances s1^2, s2^2): n1 = (z_{1-a/2} + z_{power})^2 (s1^2 + s2^2/r) / effect^2
    """
    if effect == 0.0 or ratio <= 0.0:
        return None
    za, zb = _NORMAL.inv_cdf(1.0 - alpha / 2.0), _NORMAL.inv_cdf(power)
    first, second = p_or_var
    if binary:
        pooled = (first + ratio * second) / (1.0 + ratio)
        root = za * math.sqrt(pooled * (1.0 - pooled) * (1.0 + 1.0 / ratio)) + zb * math.sqrt(
            first * (1.0 - first) + second * (1.0 - second) / ratio
        )
        n1 = root * root / (effect * effect)
    else:
        n1 = (za + zb) ** 2 * (first + second / ratio) / (effect * effect)
    return n1, ratio * n1


def latency_quantile(histogram: dict[str, int], q: float) -> float | None:
    """The q-quantile (seconds) of a latency histogram, interpolated inside its bucket."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for bucket in sorted(histogram, key=int):
        count = histogram[bucket]
        if count and seen + count >= rank:
            fraction = (rank - seen) / count
            return float(_FLOOR * 10.0 ** ((int(bucket) + fraction) / _PER_DECADE))
        seen += count
    return float(_FLOOR * 10.0 ** (_BUCKETS / _PER_DECADE))


@dataclass(slots=True)
class _Moments:
    n: int
    mean: float | None
    variance: float | None  # sample variance (n - 1); None below 2


def _moments(counts: dict[str, Any]) -> _Moments:
    n = int(counts["feedback"])
    if n == 0:
        return _Moments(0, None, None)
    mean = counts["reward_sum"] / n
    if n < 2:
        return _Moments(n, mean, None)
    variance = max(0.0, (counts["reward_sq"] - n * mean * mean) / (n - 1))
    return _Moments(n, mean, variance)


def summarize(stored: Any) -> list[dict[str, Any]]:
    """status.experiments: one entry per traffic split / router node of a stored value."""
    if not isinstance(stored, dict):
        return []
    alpha = float(stored.get("alpha") or DEFAULT_ALPHA)
    power = float(stored.get("power") or DEFAULT_POWER)
    min_effect = stored.get("min_effect")
    _, generation = _epoch(stored)
    experiments = stored.get("experiments") or {}
    keys = sorted(experiments, key=lambda k: (k != TRAFFIC, k))
    return [_summary(experiments[k], generation, alpha, power, min_effect) for k in keys]


def _summary(
    exp: dict[str, Any], generation: int, alpha: float, power: float, min_effect: Any
) -> dict[str, Any]:
    names: list[str] = exp["branches"]
    counts = exp["counts"]
    binary = all(counts[n]["non_binary"] == 0 for n in names)
    moments = {n: _moments(counts[n]) for n in names}
    branches = []
    for index, name in enumerate(names):
        c, m = counts[name], moments[name]
        p50 = latency_quantile(c["latency"], 0.5)
        p99 = latency_quantile(c["latency"], 0.99)
        ci: list[float] | None = None
        if m.n and m.mean is not None and binary:
            ci = list(wilson_interval(c["reward_sum"], m.n))
        elif m.mean is not None and m.variance is not None:
            ci = list(t_interval(m.mean, m.variance, m.n))
        branches.append(
            {
                "branch": name,
                "index": index,
                "requests": c["requests"],
                "errors": c["errors"],
                "error_rate": c["errors"] / c["requests"] if c["requests"] else None,
                "latency_p50_ms": None if p50 is None else p50 * 1000.0,
                "latency_p99_ms": None if p99 is None else p99 * 1000.0,
                "feedback": m.n,
                "reward_mean": m.mean,
                "reward_ci95": ci,
            }
        )
    rated = [n for n in names if moments[n].mean is not None]
    leader = max(rated, key=lambda n: (moments[n].mean, -names.index(n))) if len(rated) >= 2 else None
    others = [n for n in rated if n != leader]
    # Best against each other branch: K - 1 tests, each at alpha / (K - 1) (Bonferroni), so that
    # "winner" is wrong with probability at most alpha.
    per_test = alpha / max(1, len(others))
    comparisons = [
        _compare(name, leader, moments, counts, binary, per_test, power, min_effect)
        for name in others
        if leader is not None
    ]
    won = bool(comparisons) and all(c["significant"] for c in comparisons)
    entry: dict[str, Any] = {
        "kind": exp["kind"],
        "predictor": exp["predictor"] or None,
        "node": exp["node"] or None,
        "generation": generation,
        "test": Z_TEST if binary else WELCH,
        "alpha": alpha,
        "power": power,
        "min_effect": min_effect,
        "correction": "bonferroni" if len(others) > 1 else None,
        "branches": branches,
        "leader": leader,
        "winner": leader if won else None,
        "comparisons": comparisons,
    }
    if exp["kind"] == TRAFFIC:
        entry["unattributed_feedback"] = exp.get("unattributed", 0)
    return entry


def _compare(
    name: str,
    leader: str,
    moments: dict[str, _Moments],
    counts: dict[str, Any],
    binary: bool,
    alpha: float,
    power: float,
    min_effect: Any,
) -> dict[str, Any]:
    a, b = moments[name], moments[leader]
    assert a.mean is not None and b.mean is not None
    effect = b.mean - a.mean
    statistic = df = p_value = None
    if binary:
        tested = two_proportion_z(counts[leader]["reward_sum"], b.n, counts[name]["reward_sum"], a.n)
        if tested is not None:
            statistic, p_value = tested
        spread = (b.mean, a.mean)
    else:
        if a.variance is not None and b.variance is not None:
            found = welch(b.mean, b.variance, b.n, a.mean, a.variance, a.n)
            if found is not None:
                statistic, df, p_value = found
        spread = (b.variance or 0.0, a.variance or 0.0)
    planned = float(min_effect) if min_effect else effect
    sizes = sample_sizes(spread, planned, a.n / b.n, alpha, power, binary)
    required = remaining = None
    if sizes is not None:
        required = {leader: math.ceil(sizes[0]), name: math.ceil(sizes[1])}
        remaining = max(0, required[leader] - b.n) + max(0, required[name] - a.n)
    return {
        "branch": name,
        "leader": leader,
        "effect": effect,
        "relative_effect": effect / a.mean if a.mean else None,
        "statistic": statistic,
        "df": df,
        "p_value": p_value,
        "alpha": alpha,
        "significant": p_value is not None and p_value < alpha,
        "required_feedback": required,
        "remaining_feedback": remaining,
    }
