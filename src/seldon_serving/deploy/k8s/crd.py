"""The SeldonDeployment CustomResourceDefinition the install applies.

Every version Seldon ever served (v1alpha1 ... v1) is served with one schema, the one generated
from the models (`spec.crd_schema`), and v1alpha2 is stored.  With conversion strategy None the
API server only rewrites `apiVersion` between versions, and it prunes with the schema of the
version involved: one schema that declares every version's fields means an object written as
v1alpha1 (`componentSpec`) keeps it when read as v1alpha2, and the operator normalises what it
reads.  The status subresource is on, so the operator's status patches never race user edits.
"""

from __future__ import annotations

from typing import Any

from seldon_serving.spec import API_VERSIONS, GROUP, KIND, crd_schema

PLURAL = "seldondeployments"
SINGULAR = "seldondeployment"
SHORT_NAMES = ["sdep"]
STORAGE_VERSION = "v1alpha2"  # Seldon 0.2's version: what the seed's clusters already hold
CRD_NAME = f"{PLURAL}.{GROUP}"
PART_OF = {"app.kubernetes.io/part-of": "seldon-serving"}

# `kubectl get sdep` shows what the operator reports, as Seldon's CRD did.
PRINTER_COLUMNS: list[dict[str, Any]] = [
    {
        "name": "State",
        "type": "string",
        "description": "Creating, Available or Failed, as the operator last reported",
        "jsonPath": ".status.state",
    },
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def crd() -> dict[str, Any]:
    """The apiextensions.k8s.io/v1 CustomResourceDefinition `seldondeployments.machinelearning.seldon.io`."""
    versions = [
        {
            "name": version,
            "served": True,
            "storage": version == STORAGE_VERSION,
            # A fresh copy each: YAML output must not share (alias) one dict between versions.
            "schema": {"openAPIV3Schema": crd_schema()},
            "subresources": {"status": {}},
            "additionalPrinterColumns": [dict(column) for column in PRINTER_COLUMNS],
        }
        for version in API_VERSIONS
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME, "labels": dict(PART_OF)},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": list(SHORT_NAMES),
            },
            "versions": versions,
            "conversion": {"strategy": "None"},
        },
    }
