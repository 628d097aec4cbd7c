"""Which built-in class stands behind which Seldon image, whatever its tag or registry.

`seldon serve` runs these in-process instead of pulling the image; `seldon
microservice seldon_serving.components.builtin.EpsilonGreedy` finds them by name.
"""

from __future__ import annotations

from .epsilon_greedy import EpsilonGreedy
from .mahalanobis import OutlierMahalanobis
from .mock_classifier import MockClassifier
from .thompson import ThompsonSampling

MODEL = "MODEL"
ROUTER = "ROUTER"
TRANSFORMER = "TRANSFORMER"

# Image repository (no registry host, no tag) -> (class, the node type it plays).
_IMAGES: dict[str, tuple[type, str]] = {
    "seldonio/mock_classifier": (MockClassifier, MODEL),
    "seldonio/mab_epsilon_greedy": (EpsilonGreedy, ROUTER),
    "seldonio/mab_thompson_sampling": (ThompsonSampling, ROUTER),
    "seldonio/outlier_mahalanobis": (OutlierMahalanobis, TRANSFORMER),
    "seldonio/outlier-mahalanobis-transformer": (OutlierMahalanobis, TRANSFORMER),
    "seldonio/outlier-mahalanobis-model": (OutlierMahalanobis, MODEL),
}

BUILTIN_CLASSES: dict[str, type] = {
    "MockClassifier": MockClassifier,
    "MeanClassifier": MockClassifier,  # the class name inside seldonio/mock_classifier
    "EpsilonGreedy": EpsilonGreedy,
    "ThompsonSampling": ThompsonSampling,
    "OutlierMahalanobis": OutlierMahalanobis,
}


def image_repository(image: str) -> str:
    """`docker.io/seldonio/mock_classifier:1.0@sha256:...` -> `seldonio/mock_classifier`."""
    name = image.strip().split("@", 1)[0]
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:  # a colon before the last slash is a registry port, not a tag
        name = name[:colon]
    parts = name.split("/")
    # Docker's rule: the first component is a registry host if it has a dot or a port
    # or is "localhost"; "docker.io/library/x" style prefixes are dropped the same way.
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    return "/".join(parts).lower()


def builtin_for_image(image: str) -> tuple[type, str] | None:
    """(class, service type) of the built-in that replaces `image`, or None."""
    return _IMAGES.get(image_repository(image))
