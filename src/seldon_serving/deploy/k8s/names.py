"""Names of the objects a SeldonDeployment becomes, as Seldon's operator made them: derived
from the deployment, predictor and container names, and hashed when too long for Kubernetes
(Services and label values take at most 63 characters; a Service name starts with a letter).

A deployment's own name may be up to 253 characters.  Where Seldon's operator then names the
object `seldon-<md5>`, we keep what tells objects apart to a person reading `kubectl get`: the
deployment name is cut and followed by a hash of the whole name, and the predictor and
container parts stay whole (`a-very-long-deploymen-1f3a9c0b7e-main-classifier`).  The hash
keeps names distinct; the same manifest always gives the same names.
"""

from __future__ import annotations

import hashlib
import re

MAX_NAME = 63
HASH_LENGTH = 10  # hex digits of md5 in a shortened name: 40 bits, no collision in practice
_NOT_DNS = re.compile(r"[^-a-z0-9]")
_EDGE = re.compile(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$")


def short_hash(text: str, length: int = 7) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()[:length]


def _clean(part: str) -> str:
    return _NOT_DNS.sub("-", part.lower()).strip("-")


def dns_label(name: str, *rest: str) -> str:
    """`name` (joined with `rest` by '-') made a DNS-1035 label: lowercase letters, digits and
    '-', starting with a letter, ending with a letter or digit, at most 63 characters.

    When longer, `name` is cut and followed by a hash of everything, and `rest` is kept whole
    if it leaves room for a part of `name`; else the whole is cut before the hash."""
    cleaned = "-".join(p for p in (_clean(name), *(_clean(r) for r in rest)) if p) or "x"
    if not cleaned[0].isalpha():
        cleaned = "s-" + cleaned
    if len(cleaned) <= MAX_NAME:
        return cleaned
    digest = short_hash("-".join((name, *rest)), HASH_LENGTH)
    tail = "-".join(p for p in (_clean(r) for r in rest) if p)
    room = MAX_NAME - HASH_LENGTH - 1 - (len(tail) + 1 if tail else 0)
    if tail and room >= 8:  # enough of the deployment's name to recognise it
        head = cleaned[:room].rstrip("-")
        return f"{head}-{digest}-{tail}"
    head = cleaned[: MAX_NAME - HASH_LENGTH - 1].rstrip("-")
    return f"{head}-{digest}"


def deployment_name(sdep: str, predictor: str, containers: list[tuple[str, str]]) -> str:
    """A predictor's Deployment for one pod template: `<sdep>-<predictor>-<md5 of its
    containers' name:image>`, shortened (see `dns_label`) when longer than 63 characters."""
    digest = short_hash(";".join(f"{name}:{image}" for name, image in containers))
    return dns_label(sdep, predictor, digest)


def engine_deployment_name(sdep: str, predictor: str) -> str:
    """The engine's own Deployment (annotation seldon.io/engine-separate-pod)."""
    return dns_label(sdep, predictor, "svc-orch")


def container_service_name(sdep: str, predictor: str, container: str) -> str:
    return dns_label(sdep, predictor, container)


def predictor_service_name(sdep: str, predictor: str) -> str:
    return dns_label(sdep, predictor)


def label_value(value: str) -> str:
    """A label value: at most 63 characters, starting and ending with a letter or digit; a
    longer one is cut and followed by a hash of it."""
    if len(value) <= MAX_NAME:
        return value
    head = _EDGE.sub("", value[: MAX_NAME - HASH_LENGTH - 1])
    digest = short_hash(value, HASH_LENGTH)
    return f"{head}-{digest}" if head else f"seldon-{digest}"
