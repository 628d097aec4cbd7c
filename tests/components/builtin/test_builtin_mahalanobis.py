"""The online Mahalanobis outlier detectors behind Seldon's images (SPEC 8): scores equal to
Seldon's own code on the same stream, and the detector's behaviour as a component."""

from __future__ import annotations

import contextlib
import io
import threading
import types
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.linalg

from seldon_serving.components.builtin import (
    BuiltinInputError,
    BuiltinParameterError,
    CoreMahalanobis,
    OutlierMahalanobis,
    OutlierMahalanobis02,
    builtin_for_image,
)
from seldon_serving.components.builtin.mahalanobis import OnlineDetector
from seldon_serving.state.base import StateHandle

REFERENCE = Path(__file__).parent / "seldon_reference"
SCALES = np.array([3.0, 2.0, 1.5, 1.0, 0.5])  # distinct variances: a well-defined top-3 subspace


def normal_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.normal(size=(n, SCALES.size)) * SCALES + np.array([10.0, -5.0, 0.0, 2.0, 1.0])


def shifted_stream(seed: int, n: int = 2000, fraction: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """n 4-D normal rows, `fraction` of them shifted by 6 along every axis (the issue's stream)."""
    rng = np.random.default_rng(seed)
    rows = rng.normal(size=(n, 4)) * [3.0, 2.0, 1.5, 1.0] + [10.0, -5.0, 0.0, 2.0]
    outliers = rng.random(n) < fraction
    rows[outliers] += rng.choice([-1.0, 1.0], size=(int(outliers.sum()), 4)) * 6.0
    return rows, outliers


def split(rows: np.ndarray, sizes: Iterable[int]) -> list[np.ndarray]:
    bounds = np.cumsum(list(sizes))
    assert bounds[-1] == len(rows)
    return np.split(rows, bounds[:-1])


def seldon_detector(file: str, cls: str) -> Any:
    """A fresh instance of Seldon's own class, run from the verbatim source file."""
    module = types.ModuleType(file)
    exec(compile((REFERENCE / file).read_text(), file, "exec"), module.__dict__)

    def eigh(matrix: np.ndarray, eigvals: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        # SciPy renamed the keyword; the computation is the same.
        result: tuple[np.ndarray, np.ndarray] = scipy.linalg.eigh(matrix, subset_by_index=list(eigvals))
        return result

    module.eigh = eigh
    return getattr(module, cls)()


def seldon_scores(file: str, cls: str, batches: list[np.ndarray]) -> np.ndarray:
    detector = seldon_detector(file, cls)
    out = []
    for batch in batches:
        with contextlib.redirect_stdout(io.StringIO()):  # the 0.3 image prints every request
            if cls == "CoreMahalanobis":
                detector.transform_input(batch, [])
                out.append(detector.score)
            else:
                out.append(detector.score(batch, []))
    return np.concatenate(out)


def scores_of(detector: OnlineDetector, batches: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.asarray(detector.transform_input(b, []).tags["outlierScore"]) for b in batches])


IMAGES: dict[str, tuple[str, str, str]] = {
    # image -> Seldon's file and class for it
    "seldonio/outlier_mahalanobis:0.3": (
        "OutlierMahalanobis-v0.2.5.py.txt",
        "OutlierMahalanobis",
        "OutlierMahalanobis",
    ),
    "seldonio/outlier_mahalanobis:0.2": (
        "OutlierMahalanobis-v0.2.3.py.txt",
        "OutlierMahalanobis",
        "OutlierMahalanobis02",
    ),
    "seldonio/outlier-mahalanobis-transformer:0.1": (
        "CoreMahalanobis-v1.0.0.py.txt",
        "CoreMahalanobis",
        "CoreMahalanobis",
    ),
}
BATCHINGS = {
    # 0.2's first request has two rows: Seldon's 0.2 image fails a first one-row request
    "one row at a time": [2] + [1] * 298,
    "threes": [3] * 100,
    "mixed": [2, 1, 1, 5, 1, 17, 3, 1, 50, 1, 1, 36, 4, 77] + [1] * 100,
}


@pytest.mark.parametrize("sizes", BATCHINGS.values(), ids=BATCHINGS.keys())
@pytest.mark.parametrize("image", IMAGES)
def test_scores_equal_seldons_own_code(image: str, sizes: list[int]) -> None:
    # Detector parity: the image's scores are those of Seldon's detector on the same stream,
    # with clipping (start_clip 50) biting in the later image's case.
    file, cls, ours = IMAGES[image]
    found = builtin_for_image(image)
    assert found is not None and found.cls.__name__ == ours
    rows, _ = shifted_stream(3, n=300)
    batches = split(rows, sizes)
    expected = seldon_scores(file, cls, batches)
    got = scores_of(found.cls(), batches)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    assert (got > 25).sum() >= 5  # the stream's outliers do score high


def test_the_issues_stream_through_the_seed_image_scores_as_seldon() -> None:
    # 2,000 4-D rows, 5% shifted outliers, one row per request (as the prototype is used).
    rows, outliers = shifted_stream(0)
    expected = seldon_scores("OutlierMahalanobis-v0.2.5.py.txt", "OutlierMahalanobis", list(rows[:, None, :]))
    detector = OutlierMahalanobis()
    got = np.array([detector.predict(row[None, :], []).tags["outlierScore"][0] for row in rows])
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    recall = (got[outliers] > 25).mean()
    assert 0.8 < recall < 0.95  # the seed's threshold 25 means what it meant in Seldon


def test_images_map_to_the_variant_of_their_tag() -> None:
    for image, cls in [
        ("seldonio/outlier_mahalanobis:0.3", OutlierMahalanobis),
        ("seldonio/outlier_mahalanobis", OutlierMahalanobis),
        ("docker.io/seldonio/outlier_mahalanobis:0.2", OutlierMahalanobis02),
        ("localhost:5000/seldonio/outlier_mahalanobis:0.1", OutlierMahalanobis02),
        ("seldonio/outlier-mahalanobis-model:1.0", CoreMahalanobis),
    ]:
        found = builtin_for_image(image)
        assert found is not None and found.cls is cls, image


def test_a_first_one_row_request_works_where_seldons_02_image_failed() -> None:
    # Seldon's 0.2 divides 0 by 0 on it (and fails every later one-row request for good).
    detector = OutlierMahalanobis02()
    rows = normal_rows(np.random.default_rng(0), 40)
    scores = [detector.score(row[None, :], [])[0] for row in rows]
    assert scores[0] == 0.0 and scores[-1] > 0.0
    assert detector.state_summary()["observations"] == 40


def test_far_row_is_flagged_and_normal_rows_are_not() -> None:
    rng = np.random.default_rng(5)
    detector = OutlierMahalanobis()
    history = normal_rows(rng, 200)
    for batch in split(history, [10] * 20):
        detector.transform_input(batch, [])
    center, spread = history.mean(axis=0), history.std(axis=0)
    far = center + 10 * spread * np.array([1, 0, 0, 0, 0])
    request = np.vstack([normal_rows(rng, 3), far[None, :]])
    response = detector.transform_input(request, [])
    assert response.data is request  # the data passes through untouched
    assert response.tags["outlier-predictions"] == [0, 0, 0, 1]
    assert response.tags["outlierScore"][3] > 25
    assert max(response.tags["outlierScore"][:3]) < 25


def test_first_rows_score_zero_while_covariance_is_singular() -> None:
    detector = OutlierMahalanobis()
    response = detector.transform_input(normal_rows(np.random.default_rng(0), 4), [])
    assert response.tags == {"outlierScore": [0.0] * 4, "outlier-predictions": [0] * 4}
    single = detector.transform_input(normal_rows(np.random.default_rng(1), 1), [])
    assert single.tags["outlierScore"][0] > 0


def test_metrics_and_model_mode() -> None:
    rng = np.random.default_rng(2)
    detector = CoreMahalanobis(threshold=20)
    detector.transform_input(normal_rows(rng, 100), [])
    outlier = normal_rows(rng, 1) + 50 * SCALES
    response = detector.predict(np.vstack([normal_rows(rng, 1), outlier]), [])
    assert response.data.tolist() == [0, 1]
    gauges = {m["key"]: m["value"] for m in response.metrics}
    assert all(m["type"] == "GAUGE" for m in response.metrics)
    assert gauges["is_outlier"] == 0.5
    assert gauges["nb_outliers"] >= 1 and gauges["observation"] == 102
    assert gauges["fraction_outliers"] == pytest.approx(gauges["nb_outliers"] / 102)
    assert gauges["threshold"] == 20
    assert gauges["outlier_score"] == pytest.approx(np.mean(response.tags["outlierScore"]))
    assert detector.last_tags() == response.tags and detector.last_metrics() == response.metrics
    assert not hasattr(detector, "tags") and not hasattr(detector, "metrics")  # per request only
    summary = detector.state_summary()
    assert summary["observations"] == 102 and summary["nb_outliers"] == gauges["nb_outliers"]


def test_concurrent_workers_sharing_a_store_all_get_counted(handle: StateHandle) -> None:
    workers = [OutlierMahalanobis(state=handle) for _ in range(4)]
    rows = normal_rows(np.random.default_rng(9), 400)

    def serve(worker: OutlierMahalanobis, part: np.ndarray) -> None:
        for batch in np.split(part, 20):
            worker.transform_input(batch, [])

    threads = [
        threading.Thread(target=serve, args=(w, p)) for w, p in zip(workers, np.split(rows, 4), strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    state = handle.get()
    assert state["n"] == 400
    np.testing.assert_allclose(state["mean"], rows.mean(axis=0), rtol=1e-9)  # every row, once


def test_a_redelivered_request_is_counted_once() -> None:
    detector = OutlierMahalanobis()
    rows = normal_rows(np.random.default_rng(4), 30)
    first = detector.transform_input(rows, [], meta={"puid": "abc"})
    again = detector.transform_input(rows, [], meta={"puid": "abc"})
    assert detector.state_summary()["observations"] == 30
    assert len(again.tags["outlierScore"]) == 30 and first.tags["outlier-predictions"] == [0] * 30
    detector.transform_input(rows[:5] + 1.0, [], meta={"puid": "abc"})  # same puid, other data
    assert detector.state_summary()["observations"] == 35


def test_max_n_follows_a_shifting_distribution_faster() -> None:
    rng = np.random.default_rng(6)
    before, after = normal_rows(rng, 1000), normal_rows(rng, 600) + 20.0
    means = []
    for max_n in (-1, 100):
        detector = OutlierMahalanobis(max_n=max_n)
        for batch in np.split(before, 10) + np.split(after, 12):
            detector.transform_input(batch, [])
        means.append(np.asarray(detector.handle.get()["mean"]))
    target = after.mean(axis=0)
    assert np.abs(means[1] - target).max() < 1.0 < np.abs(means[0] - target).max()


@pytest.mark.parametrize(
    "bad",
    [np.array([1.0, 2.0, 3.0]), [[1.0, float("nan"), 0.0, 0.0, 0.0]], "text", np.zeros((2, 0))],
)
def test_unusable_input_refused_clearly(bad: object) -> None:
    with pytest.raises(BuiltinInputError, match="outlier_mahalanobis"):
        OutlierMahalanobis().transform_input(bad, [])


def test_feature_count_must_stay_the_same() -> None:
    detector = OutlierMahalanobis()
    detector.transform_input(np.zeros((3, 5)), [])
    with pytest.raises(BuiltinInputError, match="5 features; this request has 4"):
        detector.transform_input(np.zeros((1, 4)), [])
    assert detector.state_summary()["observations"] == 3


def test_empty_batch_changes_nothing() -> None:
    detector = OutlierMahalanobis()
    response = detector.transform_input(np.zeros((0, 5)), [])
    assert response.tags == {"outlierScore": [], "outlier-predictions": []}
    assert detector.state_summary()["observations"] == 0


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: OutlierMahalanobis(n_components=0), "n_components"),
        (lambda: OutlierMahalanobis(max_n=1), "max_n must be >= 2"),
        (lambda: OutlierMahalanobis(start_clip=10), "start_clip is not one of seldonio/outlier_mahalanobis"),
        (lambda: CoreMahalanobis(n_stdev=-1), "n_stdev"),
    ],
)
def test_bad_parameters_refused(make: Callable[[], object], match: str) -> None:
    with pytest.raises(BuiltinParameterError, match=match):
        make()


@pytest.mark.parametrize("huge", [1e308, -1e200, 1e101])
def test_huge_values_are_refused_before_they_reach_the_shared_statistics(huge: float) -> None:
    # Found by fuzzing the gateway: one row of [1e308, 1e308] was absorbed, the next
    # overflowed the covariance, and every later request to the deployment answered 500.
    detector = OutlierMahalanobis()
    detector.transform_input(np.array([[1.0, 2.0], [2.0, 1.0]]), [])
    for _ in range(2):
        with pytest.raises(BuiltinInputError, match="takes values up to 1e"):
            detector.transform_input(np.array([[huge, 1.0]]), [])
    assert detector.state_summary()["observations"] == 2
    detector.transform_input(np.array([[1e100, -1e100], [3.0, 4.0]]), [])  # the largest allowed
    state = detector.handle.get()
    assert np.isfinite(state["mean"]).all() and np.isfinite(state["cov"]).all()
    # Seldon's arithmetic has no meaningful score at that scale, but the request is answered
    assert np.isfinite(detector.transform_input(np.array([[1.0, 2.0]]), []).tags["outlierScore"][0])


@pytest.mark.parametrize(
    "poison",
    [
        {"mean": [1e308, 1e308], "cov": [[None, None], [None, None]]},  # inf written as null
        {"mean": [float("inf"), 0.0], "cov": [[0.0, 0.0], [0.0, 0.0]]},
        {"mean": [0.0], "cov": [[1.0]]},  # the wrong shape
    ],
)
def test_unusable_stored_statistics_start_afresh(handle: StateHandle, poison: dict[str, object]) -> None:
    # a store written before huge values were refused must not fail every request forever
    handle.update(
        lambda _: {
            "kind": "outlier_mahalanobis/seldon-0.3",
            "n": 5,
            "n_features": 2,
            "nb_outliers": 0,
            "clip_lo": None,
            "clip_hi": None,
            **poison,
        }
    )
    detector = OutlierMahalanobis(state=handle)
    detector.transform_input(np.array([[1.0, 2.0], [2.0, 1.0]]), [])
    assert detector.state_summary()["observations"] == 2
