"""Built-in components: the classes behind the images the Kubeflow prototypes use.

Each is an ordinary Seldon user class (keyword parameters, `predict`/`route`/
`transform_input`/`send_feedback`), so it runs in-process in a graph, under `seldon
microservice`, or standalone.  Routers and the detector keep their state through a
`StateHandle` (optional `state=` keyword; a private in-memory store otherwise).
"""

from ._support import BuiltinInputError, BuiltinParameterError
from .epsilon_greedy import EpsilonGreedy
from .mahalanobis import OutlierMahalanobis
from .mock_classifier import MockClassifier
from .registry import BUILTIN_CLASSES, builtin_for_image, image_repository
from .thompson import ThompsonSampling

__all__ = [
    "BUILTIN_CLASSES",
    "BuiltinInputError",
    "BuiltinParameterError",
    "EpsilonGreedy",
    "MockClassifier",
    "OutlierMahalanobis",
    "ThompsonSampling",
    "builtin_for_image",
    "image_repository",
]
