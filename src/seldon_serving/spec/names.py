"""Which names Kubernetes (and our URLs) accept for a deployment."""

from __future__ import annotations

import re

# The name becomes a Service name, a URL segment (/seldon/<name>/) and a label value.
_DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_MAX = 63


def dns_name_problem(name: str) -> str | None:
    """Why `name` is not a DNS-1123 label (lowercase alphanumerics and '-'), or None if it is one."""
    if len(name) > DNS_MAX:
        return f"{name!r} is longer than {DNS_MAX} characters"
    if not _DNS_NAME.match(name):
        return (
            f"{name!r} is not a valid name: use lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return None
