"""Intervals for the report: Wilson for proportions (accuracy, win/tie/loss shares), normal for means."""
from __future__ import annotations

import math


def z_value(confidence: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + confidence / 2))


def wilson_interval(successes: int, n: int, confidence: float) -> tuple[float, float]:
    """Wilson score interval: stays inside [0, 1] and behaves at 0% and 100%, unlike p +- z*se."""
    if n == 0:
        return (0.0, 1.0)
    z = z_value(confidence)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def mean_interval(values: list[float], confidence: float) -> tuple[float, float, float]:
    """(mean, low, high) with the normal approximation of the mean's sampling distribution."""
    n = len(values)
    if n == 0:
        return (math.nan, math.nan, math.nan)
    mean = sum(values) / n
    if n == 1:
        return (mean, mean, mean)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = z_value(confidence) * sd / math.sqrt(n)
    return (mean, mean - half, mean + half)
