"""Detection quality of the online Mahalanobis outlier detectors on labelled streams.

Each stream goes through a detector one row per request (how the seed's outlier-detector
prototype is used), through the real classes and their state handle.  A row counts as flagged
when the detector's `outlier-predictions` tag says 1; ROC AUC ranks the `outlierScore` tags
(threshold-free: how well the scores order outliers above normal rows).

Detectors: Seldon's, behind the seed's image `seldonio/outlier_mahalanobis:0.3` (scores equal to
Seldon's code; 0/1 by the default threshold 25) and behind the later
`seldonio/outlier-mahalanobis-transformer` image (clipping after 50 rows); ours,
`MAHALANOBIS_DETECTOR`, at its default (threshold_quantile 0.999, every feature), at quantile
0.99, and with Seldon's 3 components.

Streams:
- synthetic: 2,000 4-D normal rows (scales 3, 2, 1.5, 1), of which 1%, 5% or 10% are shifted
  by 6 along every axis (random signs), 5 seeds each;
- real, from scikit-learn's bundled data: breast cancer (the 357 benign tumours, with 20
  malignant ones drawn at random as outliers, 5.3%; 30 features), and wine (classes 0 and 1,
  130 wines, with 10 of class 2 as outliers, 7.1%; 13 features), each shuffled, 5 seeds.

Run:  .venv/bin/python bench/detector_quality.py [--seeds 5]
Writes its section into bench/DECISION_QUALITY.md between the lines `<!-- detectors:begin -->`
and `<!-- detectors:end -->` (appended when absent; the rest of the file is left as it is).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.metrics import roc_auc_score

from seldon_serving.components.builtin import CoreMahalanobis, MahalanobisDetector, OutlierMahalanobis
from seldon_serving.components.builtin.mahalanobis import OnlineDetector

HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- detectors:begin -->", "<!-- detectors:end -->"

DETECTORS: dict[str, Callable[[], OnlineDetector]] = {
    "Seldon, seed image `outlier_mahalanobis:0.3` (threshold 25)": OutlierMahalanobis,
    "Seldon, later `outlier-mahalanobis-transformer` (threshold 25, clipping)": CoreMahalanobis,
    "ours, `MAHALANOBIS_DETECTOR` (default: quantile 0.999)": MahalanobisDetector,
    "ours, `MAHALANOBIS_DETECTOR` (quantile 0.99)": lambda: MahalanobisDetector(threshold_quantile=0.99),
    "ours, `MAHALANOBIS_DETECTOR` (n_components 3, as Seldon's)": lambda: MahalanobisDetector(n_components=3),
}
SEED_IMAGE = next(iter(DETECTORS))
OURS = list(DETECTORS)[2]


@dataclass
class Scores:
    precision: list[float]
    recall: list[float]
    f1: list[float]
    auc: list[float]
    seconds: float = 0.0
    rows: int = 0


def synthetic(fraction: float) -> Callable[[int], tuple[np.ndarray, np.ndarray]]:
    def make(seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        rows = rng.normal(size=(2000, 4)) * [3.0, 2.0, 1.5, 1.0] + [10.0, -5.0, 0.0, 2.0]
        outliers = rng.random(2000) < fraction
        rows[outliers] += rng.choice([-1.0, 1.0], size=(int(outliers.sum()), 4)) * 6.0
        return rows, outliers

    return make


def held_out(
    features: np.ndarray, labels: np.ndarray, inliers: list[int], outlier_class: int, count: int
) -> Callable[[int], tuple[np.ndarray, np.ndarray]]:
    def make(seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        normal = features[np.isin(labels, inliers)]
        pool = features[labels == outlier_class]
        odd = pool[rng.choice(len(pool), size=count, replace=False)]
        rows = np.vstack([normal, odd])
        truth = np.r_[np.zeros(len(normal), dtype=bool), np.ones(count, dtype=bool)]
        order = rng.permutation(len(rows))
        return rows[order], truth[order]

    return make


def streams() -> dict[str, Callable[[int], tuple[np.ndarray, np.ndarray]]]:
    cancer, wine = load_breast_cancer(), load_wine()
    return {
        "synthetic 4-D, 1% outliers": synthetic(0.01),
        "synthetic 4-D, 5% outliers": synthetic(0.05),
        "synthetic 4-D, 10% outliers": synthetic(0.10),
        # class 1 is benign in scikit-learn's copy
        "breast cancer (benign + 20 malignant)": held_out(cancer.data, cancer.target, [1], 0, 20),
        "wine (classes 0, 1 + 10 of class 2)": held_out(wine.data, wine.target, [0, 1], 2, 10),
    }


def run(detector: OnlineDetector, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores, flagged = [], []
    for row in rows:
        tags = detector.transform_input(row[None, :], []).tags
        scores.append(tags["outlierScore"][0])
        flagged.append(tags["outlier-predictions"][0])
    return np.array(scores), np.array(flagged, dtype=bool)


def measure(seeds: int) -> dict[str, dict[str, Scores]]:
    results: dict[str, dict[str, Scores]] = {}
    for stream_name, make in streams().items():
        results[stream_name] = {name: Scores([], [], [], []) for name in DETECTORS}
        for seed in range(seeds):
            rows, truth = make(seed)
            for name, build in DETECTORS.items():
                start = time.perf_counter()
                scores, flagged = run(build(), rows)
                entry = results[stream_name][name]
                entry.seconds += time.perf_counter() - start
                entry.rows += len(rows)
                hits = int((flagged & truth).sum())
                precision = hits / flagged.sum() if flagged.any() else 1.0
                recall = hits / truth.sum()
                entry.precision.append(precision)
                entry.recall.append(recall)
                entry.f1.append(2 * hits / (flagged.sum() + truth.sum()))
                entry.auc.append(float(roc_auc_score(truth, scores)))
        print(f"{stream_name}: done", flush=True)
    return results


def spread(values: list[float]) -> str:
    return f"{np.mean(values):.2f} ± {np.std(values):.2f}"


def section(results: dict[str, dict[str, Scores]], seeds: int) -> list[str]:
    lines = [
        BEGIN,
        "## Outlier detectors: precision, recall, F1, ROC AUC",
        "",
        f"Labelled streams, one row per request, mean ± standard deviation over {seeds} seeds;",
        "produced by `bench/detector_quality.py` (its docstring describes the streams). Seldon's",
        "detectors are our classes behind Seldon's image names, whose scores equal Seldon's own",
        "code to 1e-6 (`tests/components/builtin/test_builtin_mahalanobis.py` runs Seldon's files",
        "on the same streams). Precision counts 1.0 for a run that flags nothing.",
        "",
    ]
    for stream_name, by_detector in results.items():
        lines += [
            f"**{stream_name}**",
            "",
            "| detector | precision | recall | F1 | ROC AUC | µs per row |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, s in by_detector.items():
            cost = 1e6 * s.seconds / max(s.rows, 1)
            lines.append(
                f"| {name} | {spread(s.precision)} | {spread(s.recall)} | {spread(s.f1)} | "
                f"{spread(s.auc)} | {cost:.0f} |"
            )
        lines.append("")
    lines += headline(results)
    lines += [
        "Reading it. On the synthetic streams (normal data, the issue's scenario) ours wins at",
        "every outlier share: each row is scored against the rows before it (Seldon's projection",
        "uses a covariance that already holds the row, and a one-row update divides by n+1), and",
        "the outliers it flags are kept out of the statistics, so its recall holds at 10% where",
        "the seed image's falls (its covariance absorbs the outliers and widens); its 0.999",
        "quantile is a calibrated false-alarm rate where the fixed 25 over-flags at 1%. The later",
        "Seldon image's clipping limits that widening, as its 10% row shows.",
        "",
        "The real streams are not normal, and there the quantile's promise does not hold:",
        "against their own full-sample covariance 8.7% of the benign breast-cancer rows lie beyond",
        "the 30-D chi-square's 0.999 point, so ours (every feature, standardized) flags many",
        "benign rows and loses to Seldon's in F1 and ROC AUC on that stream. Seldon's top 3",
        "components of the raw covariance are the tumour-size features (areas, in the",
        "thousands), which is what separates malignant tumours; ours with 3 components of the",
        "standardized features ranks as well (ROC AUC 0.93) but flags fewer. On wine, the raw",
        "components are proline and magnesium, which do not separate class 2: Seldon's scores",
        "rank the outliers below the normal wines (ROC AUC < 0.5) and flag none; ours ranks",
        "them well (ROC AUC 0.8-0.9) but, with 13 features and 130 rows, flags few at 0.999. For",
        "heavy-tailed data give a raw `threshold` read off the scores of known-good traffic, or",
        "fewer components. Rows before a covariance can be inverted are absorbed unscored by",
        "both (ours needs features + 1 rows by default), so an outlier among the first rows of a",
        "shuffled real stream is missed by both.",
        "",
        "Time per row is one transform_input through the in-memory state store, measured on a",
        "shared 2-core machine (others' tests running): an upper bound, not a benchmark.",
        END,
    ]
    return lines


def headline(results: dict[str, dict[str, Scores]]) -> list[str]:
    rows = [
        f"{stream}: F1 {np.mean(by[SEED_IMAGE].f1):.2f} (Seldon's seed image) vs "
        f"{np.mean(by[OURS].f1):.2f} (ours); ROC AUC {np.mean(by[SEED_IMAGE].auc):.2f} vs "
        f"{np.mean(by[OURS].auc):.2f}"
        for stream, by in results.items()
    ]
    return ["Headline (mean F1 at default settings):", "", *[f"- {r}" for r in rows], ""]


def write(lines: list[str], path: Path) -> None:
    text = path.read_text() if path.exists() else ""
    block = "\n".join(lines)
    if BEGIN in text and END in text:
        before, rest = text.split(BEGIN, 1)
        after = rest.split(END, 1)[1]
        text = before + block + after
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + block + "\n"
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=HERE / "DECISION_QUALITY.md")
    args = parser.parse_args()
    results = measure(args.seeds)
    lines = section(results, args.seeds)
    write(lines, args.out)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
