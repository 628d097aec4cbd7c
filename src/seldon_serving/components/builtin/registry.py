"""Every built-in component, in one table: what a graph node names (`implementation`, or a
container image whatever its tag or registry) and the class that serves it.

A built-in is an ordinary Seldon user class, run through the component adapter like any
other: in-process by `seldon serve`, or alone by `seldon microservice <dotted class name>`.
Adding one is a new module in this package and one line in `BUILTINS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from seldon_serving.spec.enums import add_implementation

from ._bandit import BanditRouter
from ._support import Children
from .ab_test import RandomABTest
from .average_combiner import AverageCombiner
from .epsilon_greedy import DecayingEpsilonGreedy, EpsilonGreedy
from .linucb import LinUCB
from .mahalanobis import CoreMahalanobis, OutlierMahalanobis, OutlierMahalanobis02
from .mahalanobis_detector import MahalanobisDetector
from .mock_classifier import MockClassifier
from .simple import SimpleModel, SimpleRouter
from .thompson import ThompsonSampling
from .ucb import UCB1, UCB1Tuned

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
    # image repositories (no registry host) it stands behind; "repository:tag" for one tag only
    images: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()  # other class names it is known by

    @property
    def name(self) -> str:
        """How `seldon get` and errors call it: the implementation, else the class."""
        return self.implementation or self.cls.__name__

    def children_problem(self, count: int, parameters: Mapping[str, Any] | None = None) -> str | None:
        """Why a node with `count` children (and these parameters) cannot run this built-in, or None."""
        rule: Children | None = getattr(self.cls, "children", None)
        if isinstance(rule, Children):
            return rule.problem(self.name, count)
        if issubclass(self.cls, BanditRouter) and parameters is not None:
            # A bandit routes to branch indexes 0..n_branches-1: one per child, no more, no fewer.
            declared = parameters.get("n_branches")
            try:
                n_branches = int(str(declared)) if declared is not None else None
            except ValueError:
                return None  # the constructor names the bad value
            if n_branches is not None and n_branches != count:
                return (
                    f"{self.name} has n_branches {n_branches} but {count} children: "
                    "give it one branch per child"
                )
        return None


BUILTINS: tuple[Builtin, ...] = (
    Builtin(SimpleModel, MODEL, implementation="SIMPLE_MODEL"),
    Builtin(SimpleRouter, ROUTER, implementation="SIMPLE_ROUTER"),
    Builtin(RandomABTest, ROUTER, implementation="RANDOM_ABTEST"),
    Builtin(AverageCombiner, COMBINER, implementation="AVERAGE_COMBINER"),
    # the class inside seldonio/mock_classifier was called MeanClassifier
    Builtin(MockClassifier, MODEL, images=("seldonio/mock_classifier",), aliases=("MeanClassifier",)),
    Builtin(EpsilonGreedy, ROUTER, images=("seldonio/mab_epsilon_greedy",)),
    Builtin(ThompsonSampling, ROUTER, images=("seldonio/mab_thompson_sampling",)),
    # The bandit routers by implementation name (`seldon generate mab --router NAME`); the
    # seed's epsilon-greedy image keeps Seldon's constant epsilon, EPSILON_GREEDY decays.
    Builtin(UCB1, ROUTER, implementation="UCB1"),
    Builtin(UCB1Tuned, ROUTER, implementation="UCB1_TUNED"),
    Builtin(DecayingEpsilonGreedy, ROUTER, implementation="EPSILON_GREEDY"),
    Builtin(ThompsonSampling, ROUTER, implementation="THOMPSON_SAMPLING"),
    Builtin(LinUCB, ROUTER, implementation="LINUCB"),
    # Seldon's detectors score as Seldon's code for that image (an entry with a tag wins over
    # the repository's); MAHALANOBIS_DETECTOR is the improved one.
    Builtin(OutlierMahalanobis, TRANSFORMER, images=("seldonio/outlier_mahalanobis",)),
    Builtin(
        OutlierMahalanobis02,
        TRANSFORMER,
        images=("seldonio/outlier_mahalanobis:0.1", "seldonio/outlier_mahalanobis:0.2"),
    ),
    Builtin(CoreMahalanobis, TRANSFORMER, images=("seldonio/outlier-mahalanobis-transformer",)),
    Builtin(CoreMahalanobis, MODEL, images=("seldonio/outlier-mahalanobis-model",)),
    Builtin(MahalanobisDetector, TRANSFORMER, implementation="MAHALANOBIS_DETECTOR"),
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


def image_tag(image: str) -> str | None:
    """`seldonio/outlier_mahalanobis:0.2@sha256:...` -> `0.2` (None without a tag)."""
    name = image.strip().split("@", 1)[0]
    colon = name.rfind(":")
    return name[colon + 1 :].lower() if colon > name.rfind("/") else None


def builtin_for_image(image: str) -> Builtin | None:
    """The built-in that replaces `image` (an entry for its tag first), or None."""
    repository, tag = image_repository(image), image_tag(image)
    return (_BY_IMAGE.get(f"{repository}:{tag}") if tag else None) or _BY_IMAGE.get(repository)


def builtin_for_implementation(implementation: str) -> Builtin | None:
    """The built-in a graph node's `implementation` names, or None."""
    return _BY_IMPLEMENTATION.get(implementation)


BANDIT_ROUTERS: tuple[str, ...] = tuple(
    b.implementation for b in BUILTINS if b.implementation and issubclass(b.cls, BanditRouter)
)
"""The bandit routers' implementation names, in the table's order."""


def builtin_implementations() -> list[str]:
    """Every implementation name that is built in, sorted."""
    return sorted(_BY_IMPLEMENTATION)
