"""The few distributions the built-ins need, in plain Python (scipy is not a dependency): the
regularized incomplete beta and gamma functions, and quantiles of the chi-square and F
distributions for the improved detector's `threshold_quantile` (the A/B statistics' t-tests use
the incomplete beta too).

A new row x, independent of the c rows behind a sample mean m and covariance S (ddof 1), of a
k-variate normal distribution, has d^2 = (x-m)^T S^-1 (x-m) distributed as
(c+1)/c * k(c-1)/(c-k) * F(k, c-k) (Hotelling's T^2 for a new observation); as c grows this
tends to chi-square with k degrees of freedom.  So a quantile means the same false-positive rate
for any number of components, from the first rows on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

_TINY = 1e-300
_ITERATIONS = 100_000  # a cap only: the fraction converges in ~sqrt(max(a, b)) steps
# Counts above this use the chi-square limit; between EXACT_UP_TO and it, the count is rounded
# down onto a grid of 8 steps per doubling (a slightly higher, more cautious threshold) so that a
# long stream computes a few dozen quantiles, not one per row.
_EXACT_UP_TO = 64
_LIMIT = 1 << 20


def _continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the regularized incomplete beta function (modified Lentz)."""
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, _ITERATIONS):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1.0) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1.0)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            step = c * d
            h *= step
        if abs(step - 1.0) < 1e-15:
            break
    return h


def beta_cdf(x: float, a: float, b: float) -> float:
    """I_x(a, b), the regularized incomplete beta function."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_beta = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    front = math.exp(a * math.log(x) + b * math.log1p(-x) - log_beta)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _continued_fraction(a, b, x) / a
    return 1.0 - front * _continued_fraction(b, a, 1.0 - x) / b


def gamma_cdf(x: float, a: float) -> float:
    """P(a, x), the regularized lower incomplete gamma function."""
    if x <= 0.0:
        return 0.0
    log_front = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1.0:  # the series converges quickly here
        term = total = 1.0 / a
        for n in range(1, _ITERATIONS):
            term *= x / (a + n)
            total += term
            if abs(term) < abs(total) * 1e-16:
                break
        return total * math.exp(log_front)
    # Q(a, x) by its continued fraction (modified Lentz), P = 1 - Q.
    b = x + 1.0 - a
    c, d = 1.0 / _TINY, 1.0 / b
    h = d
    for i in range(1, _ITERATIONS):
        numerator = -i * (i - a)
        b += 2.0
        d = numerator * d + b
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = b + numerator / c
        c = c if abs(c) > _TINY else _TINY
        step = d * c
        h *= step
        if abs(step - 1.0) < 1e-15:
            break
    return 1.0 - math.exp(log_front) * h


@lru_cache(maxsize=4096)
def chi2_quantile(q: float, k: int) -> float:
    """The q-quantile of chi-square with k degrees of freedom."""
    high = max(1.0, 2.0 * k)
    while gamma_cdf(high / 2.0, k / 2.0) < q:
        high *= 2.0
    return bisect(lambda x: gamma_cdf(x / 2.0, k / 2.0) < q, 0.0, high)


def bisect(below: Callable[[float], bool], low: float, high: float) -> float:
    """The point in [low, high] where `below(x)` turns from True to False (to 1e-13, relative)."""
    for _ in range(200):
        middle = (low + high) / 2.0
        if below(middle):
            low = middle
        else:
            high = middle
        if high - low <= 1e-13 * high:
            break
    return (low + high) / 2.0


@lru_cache(maxsize=4096)
def f_quantile(q: float, d1: int, d2: int) -> float:
    """The q-quantile of the F distribution with (d1, d2) degrees of freedom."""
    # F's cdf at f is I_t(d1/2, d2/2) with t = d1 f / (d1 f + d2): bisect on t in (0, 1).
    low, high = 0.0, 1.0
    for _ in range(200):
        middle = (low + high) / 2.0
        if beta_cdf(middle, d1 / 2.0, d2 / 2.0) < q:
            low = middle
        else:
            high = middle
        if high - low <= 1e-15:
            break
    t = (low + high) / 2.0
    return d2 * t / (d1 * (1.0 - t))


def score_quantile(q: float, k: int, count: int) -> float:
    """The q-quantile of a new row's squared Mahalanobis distance over k components, against the
    mean and covariance of `count` rows (count > k; +inf when there are too few)."""
    if count <= k:
        return math.inf
    if count >= _LIMIT:
        return chi2_quantile(q, k)
    if count > _EXACT_UP_TO:
        steps = math.floor(8.0 * math.log2(count))
        count = max(_EXACT_UP_TO, math.floor(2.0 ** (steps / 8.0)))
    return _finite_quantile(q, k, count)


@lru_cache(maxsize=4096)
def _finite_quantile(q: float, k: int, count: int) -> float:
    return (count + 1.0) / count * k * (count - 1.0) / (count - k) * f_quantile(q, k, count - k)
