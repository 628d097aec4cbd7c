"""Names of the objects a SeldonDeployment becomes, as Seldon's operator made them: derived
from the deployment, predictor and container names, and hashed when too long for Kubernetes
(Services and label values take at most 63 characters; a Service name starts with a letter)."""

from __future__ import annotations

import hashlib
import re

MAX_NAME = 63
_NOT_DNS = re.compile(r"[^-a-z0-9]")


def short_hash(text: str, length: int = 7) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()[:length]


def dns_label(name: str) -> str:
    """`name` made a DNS-1035 label: lowercase letters, digits and '-', starting with a letter,
    ending with a letter or digit, at most 63 characters (hashed when longer)."""
    cleaned = _NOT_DNS.sub("-", name.lower()).strip("-") or "x"
    if not cleaned[0].isalpha():
        cleaned = "s-" + cleaned
    if len(cleaned) <= MAX_NAME:
        return cleaned
    return f"seldon-{short_hash(name)}"


def deployment_name(sdep: str, predictor: str, containers: list[tuple[str, str]]) -> str:
    """A predictor's Deployment for one pod template: `<sdep>-<predictor>-<md5 of its
    containers' name:image>`, or `seldon-<md5>` when longer than 63 characters (Seldon's rule)."""
    digest = short_hash(";".join(f"{name}:{image}" for name, image in containers))
    return dns_label(f"{sdep}-{predictor}-{digest}")


def engine_deployment_name(sdep: str, predictor: str) -> str:
    """The engine's own Deployment (annotation seldon.io/engine-separate-pod)."""
    return dns_label(f"{sdep}-{predictor}-svc-orch")


def container_service_name(sdep: str, predictor: str, container: str) -> str:
    return dns_label(f"{sdep}-{predictor}-{container}")


def predictor_service_name(sdep: str, predictor: str) -> str:
    return dns_label(f"{sdep}-{predictor}")


def label_value(value: str) -> str:
    """A label value: at most 63 characters (hashed when longer), as Kubernetes requires."""
    return value if len(value) <= MAX_NAME else f"seldon-{short_hash(value)}"
