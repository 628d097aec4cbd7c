"""Built-in components: the engine's own implementations (SIMPLE_MODEL, SIMPLE_ROUTER,
RANDOM_ABTEST, AVERAGE_COMBINER) and the classes behind the images the Kubeflow prototypes use.

Each is an ordinary Seldon user class (keyword parameters, `predict`/`route`/`aggregate`/
`transform_input`/`send_feedback`), so it runs in-process in a graph, under `seldon
microservice`, or standalone.  Routers and the detector keep their state through a
`StateHandle` (optional `state=` keyword; a private in-memory store otherwise).
`registry` says which manifest names stand for which class.
"""

from ._support import BuiltinInputError, BuiltinParameterError
from .ab_test import RandomABTest
from .average_combiner import AverageCombiner
from .epsilon_greedy import EpsilonGreedy
from .mahalanobis import CoreMahalanobis, OutlierMahalanobis, OutlierMahalanobis02
from .mahalanobis_detector import MahalanobisDetector
from .mock_classifier import MockClassifier
from .registry import (
    BUILTIN_CLASSES,
    BUILTINS,
    Builtin,
    builtin_for_image,
    builtin_for_implementation,
    image_repository,
)
from .simple import SimpleModel, SimpleRouter
from .thompson import ThompsonSampling

__all__ = [
    "BUILTINS",
    "BUILTIN_CLASSES",
    "AverageCombiner",
    "Builtin",
    "BuiltinInputError",
    "BuiltinParameterError",
    "CoreMahalanobis",
    "EpsilonGreedy",
    "MahalanobisDetector",
    "MockClassifier",
    "OutlierMahalanobis",
    "OutlierMahalanobis02",
    "RandomABTest",
    "SimpleModel",
    "SimpleRouter",
    "ThompsonSampling",
    "builtin_for_image",
    "builtin_for_implementation",
    "image_repository",
]
