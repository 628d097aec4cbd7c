"""The demo model behind seldonio/mock_classifier."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from seldon_serving.components.builtin import BuiltinInputError, BuiltinParameterError, MockClassifier


def predict(model: MockClassifier, X: object) -> np.ndarray:
    return asyncio.run(model.predict(X, []))


# sigmoid(1.5 - 35/12) = 0.195185...: the reference's "0.1953" is this value
# rounded up one digit too far (it rounds to 0.1952).
EXAMPLE_PROBA = 1 / (1 + np.exp(35 / 12 - 1.5))


def test_documented_example_row() -> None:
    out = predict(MockClassifier(), np.array([[1.0, 2.0]]))
    assert out.shape == (1, 1)
    assert out[0, 0] == pytest.approx(0.195185, abs=1e-6)
    assert out[0, 0] == EXAMPLE_PROBA


def test_one_probability_per_row_named_proba() -> None:
    model = MockClassifier()
    out = predict(model, [[1.0, 2.0], [35 / 12, 35 / 12], [100.0, 100.0]])
    assert model.class_names == ["proba"]
    assert out.shape == (3, 1)
    assert out[1, 0] == pytest.approx(0.5)  # mean equal to the threshold
    assert out[2, 0] == pytest.approx(1.0)


def test_int_value_raises_the_threshold() -> None:
    row = np.array([[3.0, 3.0]])
    assert predict(MockClassifier(intValue=1), row)[0, 0] < predict(MockClassifier(), row)[0, 0]
    assert predict(MockClassifier(intValue=1), row)[0, 0] == pytest.approx(
        1 / (1 + np.exp(-(3.0 - 35 / 12 - 1)))
    )


def test_very_negative_rows_give_zero_without_warnings() -> None:
    with np.errstate(all="raise"):
        assert predict(MockClassifier(), [[-1e6, -1e6]])[0, 0] == 0.0


@pytest.mark.parametrize("bad", [[1.0, 2.0], 5.0, [[[1.0]]], "text", [[]]])
def test_non_2d_input_refused_clearly(bad: object) -> None:
    with pytest.raises(BuiltinInputError) as info:
        predict(MockClassifier(), bad)
    assert "mock_classifier" in str(info.value)


def test_bad_parameters_refused() -> None:
    with pytest.raises(BuiltinParameterError, match="intValue"):
        MockClassifier(intValue="many")
    with pytest.raises(BuiltinParameterError, match="delaySecs"):
        MockClassifier(delaySecs=-1)


def test_delay_does_not_block_other_requests() -> None:
    model = MockClassifier(delaySecs=1)

    async def three_at_once() -> list[np.ndarray]:
        return await asyncio.gather(*(model.predict([[1.0, 2.0]], []) for _ in range(3)))

    start = time.perf_counter()
    results = asyncio.run(three_at_once())
    elapsed = time.perf_counter() - start
    assert 0.9 < elapsed < 1.8  # three 1 s requests overlap instead of taking 3 s
    assert all(r[0, 0] == EXAMPLE_PROBA for r in results)
