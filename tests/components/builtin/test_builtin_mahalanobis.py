"""The online Mahalanobis outlier detector (SPEC 8)."""

from __future__ import annotations

import threading
from collections.abc import Iterable

import numpy as np
import pytest

from seldon_serving.components.builtin import (
    BuiltinInputError,
    BuiltinParameterError,
    OutlierMahalanobis,
)
from seldon_serving.state.base import StateHandle

SCALES = np.array([3.0, 2.0, 1.5, 1.0, 0.5])  # distinct variances: a well-defined top-3 subspace


def normal_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.normal(size=(n, SCALES.size)) * SCALES + np.array([10.0, -5.0, 0.0, 2.0, 1.0])


def split(rows: np.ndarray, sizes: Iterable[int]) -> list[np.ndarray]:
    bounds = np.cumsum(list(sizes))
    assert bounds[-1] == len(rows)
    return np.split(rows, bounds[:-1])


def scores_of(detector: OutlierMahalanobis, batches: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.asarray(detector.transform_input(b, []).tags["outlierScore"]) for b in batches])


def direct_scores(
    batches: list[np.ndarray], n_components: int = 3, start_clip: int = 10**9, n_stdev: float = 3.0
) -> np.ndarray:
    """The same online algorithm computed the obvious way: every statistic recomputed
    from the list of (clipped) rows seen so far, every inverse taken afresh."""
    seen: list[np.ndarray] = []
    low = high = None
    scores = []
    for batch in batches:
        clipped = np.clip(batch, low, high) if low is not None and len(seen) > start_clip else batch
        everything = np.array(seen + list(clipped))
        k = min(n_components, batch.shape[1])
        covariance = np.cov(everything, rowvar=False) if len(everything) > 1 else np.zeros((5, 5))
        basis = np.linalg.eigh(covariance)[1][:, -k:]
        for i, row in enumerate(batch):
            before = np.array(seen + list(clipped[:i]))
            if len(before) < 2:
                scores.append(0.0)
                continue
            projected = basis.T @ np.cov(before, rowvar=False) @ basis
            if np.linalg.matrix_rank(projected) < k:
                scores.append(0.0)
                continue
            d = (row - before.mean(axis=0)) @ basis
            scores.append(float(d @ np.linalg.solve(projected, d)))
        seen.extend(clipped)
        if len(seen) > start_clip:
            mean, std = np.mean(seen, axis=0), np.std(seen, axis=0, ddof=1)
            low, high = mean - n_stdev * std, mean + n_stdev * std
    return np.array(scores)


BATCHINGS = {
    "one row at a time": [1] * 120,
    "threes": [3] * 40,
    "one big batch": [120],
    "mixed": [1, 1, 2, 1, 5, 1, 17, 3, 1, 50, 1, 1, 36],
}


@pytest.mark.parametrize("sizes", BATCHINGS.values(), ids=BATCHINGS.keys())
def test_scores_equal_the_direct_computation(sizes: list[int]) -> None:
    batches = split(normal_rows(np.random.default_rng(7), 120), sizes)
    expected = direct_scores(batches)
    got = scores_of(OutlierMahalanobis(start_clip=10**9), batches)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    assert (got[:4] == 0).all() and (got[5:] > 0).all()  # 3-D projection: first score needs 4 rows


@pytest.mark.parametrize("sizes", [[1] * 90, [7] * 12 + [6], [2, 30, 1, 1, 50, 6]])
def test_scores_equal_the_direct_computation_with_clipping(sizes: list[int]) -> None:
    # n_stdev 1 makes the clip bite on many rows, so a mistake in it would show.
    batches = split(normal_rows(np.random.default_rng(11), 90), sizes)
    expected = direct_scores(batches, start_clip=20, n_stdev=1.0)
    got = scores_of(OutlierMahalanobis(start_clip=20, n_stdev=1.0), batches)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    unclipped = direct_scores(batches)
    assert not np.allclose(expected, unclipped)  # clipping changed the answer


@pytest.mark.parametrize("sizes", BATCHINGS.values(), ids=BATCHINGS.keys())
def test_running_mean_and_covariance_equal_numpy(sizes: list[int], handle: StateHandle) -> None:
    rows = normal_rows(np.random.default_rng(3), 120)
    detector = OutlierMahalanobis(start_clip=10**9, state=handle)
    for batch in split(rows, sizes):
        detector.transform_input(batch, [])
    state = handle.get()
    assert state["n"] == 120
    np.testing.assert_allclose(state["mean"], rows.mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(state["cov"], np.cov(rows, rowvar=False, ddof=1), rtol=1e-9)


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
    detector = OutlierMahalanobis(threshold=20)
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


def test_score_method_of_the_old_outlier_detector_contract() -> None:
    scores = OutlierMahalanobis().score(normal_rows(np.random.default_rng(0), 10), [])
    assert scores.shape == (10,)


def test_concurrent_workers_sharing_a_store_all_get_counted(handle: StateHandle) -> None:
    workers = [OutlierMahalanobis(start_clip=10**9, state=handle) for _ in range(4)]
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
    np.testing.assert_allclose(state["mean"], rows.mean(axis=0), rtol=1e-9)


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
        detector = OutlierMahalanobis(max_n=max_n, start_clip=10**9)
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


def test_bad_parameters_refused() -> None:
    with pytest.raises(BuiltinParameterError, match="n_components"):
        OutlierMahalanobis(n_components=0)
    with pytest.raises(BuiltinParameterError, match="max_n"):
        OutlierMahalanobis(max_n=1)


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
    assert detector.transform_input(np.array([[1.0, 2.0]]), []).tags["outlierScore"][0] >= 0.0


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
            "kind": "outlier_mahalanobis",
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
