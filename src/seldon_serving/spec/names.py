"""Which names Kubernetes (and our URLs) accept for a deployment."""

from __future__ import annotations

import re

# A deployment's name is a Kubernetes object name: the API server takes up to 253 characters
# (a DNS-1123 subdomain), and Seldon's webhook adds no limit of its own; the names made from it
# (Services, Deployments, label values: at most 63) are hashed when longer
# (deploy/k8s/names.py).  Our URLs (/seldon/<name>/), the gRPC `seldon` header and local state
# take it as it is.  Dots, which a subdomain allows, stay refused: Seldon puts the name into
# Service names unchanged, where a dot is invalid, so no Seldon manifest has one.
_DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_MAX = 253


def dns_name_problem(name: str) -> str | None:
    """Why `name` is not a valid deployment name (lowercase alphanumerics and '-', at most 253
    characters), or None if it is one."""
    if len(name) > DNS_MAX:
        return f"{name[:40]!r}... is {len(name)} characters long; Kubernetes takes at most {DNS_MAX}"
    if not _DNS_NAME.match(name):
        return (
            f"{name!r} is not a valid name: use lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return None
