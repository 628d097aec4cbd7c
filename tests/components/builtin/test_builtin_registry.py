"""Which built-in replaces which Seldon image, and loading the classes by name."""

from __future__ import annotations

import pytest

import seldon_serving.components.builtin as builtin
from seldon_serving.components.builtin import (
    BUILTIN_CLASSES,
    CoreMahalanobis,
    EpsilonGreedy,
    MockClassifier,
    OutlierMahalanobis,
    OutlierMahalanobis02,
    ThompsonSampling,
    builtin_for_image,
)


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("seldonio/mock_classifier:1.0", (MockClassifier, "MODEL")),
        ("docker.io/seldonio/mock_classifier:latest", (MockClassifier, "MODEL")),
        ("seldonio/mock_classifier", (MockClassifier, "MODEL")),
        ("localhost:5000/seldonio/mock_classifier:1.0", (MockClassifier, "MODEL")),
        ("seldonio/mock_classifier@sha256:" + "a" * 64, (MockClassifier, "MODEL")),
        ("seldonio/mab_epsilon_greedy:1.1", (EpsilonGreedy, "ROUTER")),
        ("seldonio/mab_thompson_sampling:0.1", (ThompsonSampling, "ROUTER")),
        ("seldonio/outlier_mahalanobis:0.3", (OutlierMahalanobis, "TRANSFORMER")),
        ("seldonio/outlier_mahalanobis:0.2", (OutlierMahalanobis02, "TRANSFORMER")),
        ("seldonio/outlier-mahalanobis-transformer:0.1", (CoreMahalanobis, "TRANSFORMER")),
        ("seldonio/outlier-mahalanobis-model:0.1", (CoreMahalanobis, "MODEL")),
        ("SeldonIO/Mock_Classifier:1.0", (MockClassifier, "MODEL")),
    ],
)
def test_known_images_map_to_builtins(image: str, expected: tuple[type, str]) -> None:
    found = builtin_for_image(image)
    assert found is not None and (found.cls, found.service_type) == expected


@pytest.mark.parametrize(
    "image", ["seldonio/mock_classifier_extra:1.0", "myorg/mock_classifier:1.0", "mock_classifier", ""]
)
def test_other_images_are_not_builtins(image: str) -> None:
    assert builtin_for_image(image) is None


def test_classes_are_reachable_by_name_for_seldon_microservice() -> None:
    for name, cls in BUILTIN_CLASSES.items():
        assert getattr(builtin, name, cls) is cls
    assert builtin.EpsilonGreedy is EpsilonGreedy
    assert BUILTIN_CLASSES["MeanClassifier"] is MockClassifier
