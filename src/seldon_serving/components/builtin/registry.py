"""Every built-in component, in one table: what a graph node names (`implementation`, or a
container image whatever its tag or registry) and the class that serves it.

A built-in is an ordinary Seldon user class, run through the component adapter like any
other: in-process by `seldon serve`, or alone by `seldon microservice <dotted class name>`.
Adding one is a new module in this package and one line in `BUILTINS`.
"""

from __future__ import annotations

from dataclasses import dataclass

from seldon_serving.spec.enums import add_implementation

from ._support import Children
from .ab_test import RandomABTest
from .average_combiner import AverageCombiner
from .epsilon_greedy import EpsilonGreedy
from .mahalanobis import OutlierMahalanobis
from .mock_classifier import MockClassifier
from .simple import SimpleModel, SimpleRouter
from .thompson import ThompsonSampling

MODEL = "MODEL"
ROUTER = "ROUTER"
TRANSFORMER = "TRANSFORMER"
COMBINER = "COMBINER"


@dataclass(frozen=True, slots=True)
class Builtin:
    """One way to name a built-in in a manifest, and what it runs as."""

    cls: type
    service_type: str  # the node type it plays: MODEL, ROUTER, TRANSFORMER, COMBINER
    implementation: str | None = None  # the graph's `implementation` value
    images: tuple[str, ...] = ()  # image repositories (no registry host, no tag) it stands behind
    aliases: tuple[str, ...] = ()  # other class names it is known by

    @property
    def name(self) -> str:
        """How `seldon get` and errors call it: the implementation, else the class."""
        return self.implementation or self.cls.__name__

    def children_problem(self, count: int) -> str | None:
        """Why a node with `count` children cannot run this built-in, or None."""
        rule: Children | None = getattr(self.cls, "children", None)
        return rule.problem(self.name, count) if isinstance(rule, Children) else None


BUILTINS: tuple[Builtin, ...] = (
    Builtin(SimpleModel, MODEL, implementation="SIMPLE_MODEL"),
    Builtin(SimpleRouter, ROUTER, implementation="SIMPLE_ROUTER"),
    Builtin(RandomABTest, ROUTER, implementation="RANDOM_ABTEST"),
    Builtin(AverageCombiner, COMBINER, implementation="AVERAGE_COMBINER"),
    # the class inside seldonio/mock_classifier was called MeanClassifier
    Builtin(MockClassifier, MODEL, images=("seldonio/mock_classifier",), aliases=("MeanClassifier",)),
    Builtin(EpsilonGreedy, ROUTER, images=("seldonio/mab_epsilon_greedy",)),
    Builtin(ThompsonSampling, ROUTER, images=("seldonio/mab_thompson_sampling",)),
    Builtin(
        OutlierMahalanobis,
        TRANSFORMER,
        images=("seldonio/outlier_mahalanobis", "seldonio/outlier-mahalanobis-transformer"),
    ),
    Builtin(OutlierMahalanobis, MODEL, images=("seldonio/outlier-mahalanobis-model",)),
)

_BY_IMPLEMENTATION = {b.implementation: b for b in BUILTINS if b.implementation}
for _name in _BY_IMPLEMENTATION:
    add_implementation(_name, component=True)  # manifests may name every built-in (run in the engine)
_BY_IMAGE = {image: b for b in BUILTINS for image in b.images}

BUILTIN_CLASSES: dict[str, type] = {name: b.cls for b in BUILTINS for name in (b.cls.__name__, *b.aliases)}
"""Class name -> class, for every built-in (`seldon microservice` finds them by dotted name)."""


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


def builtin_for_image(image: str) -> Builtin | None:
    """The built-in that replaces `image`, or None."""
    return _BY_IMAGE.get(image_repository(image))


def builtin_for_implementation(implementation: str) -> Builtin | None:
    """The built-in a graph node's `implementation` names, or None."""
    return _BY_IMPLEMENTATION.get(implementation)


def builtin_implementations() -> list[str]:
    """Every implementation name that is built in, sorted."""
    return sorted(_BY_IMPLEMENTATION)
