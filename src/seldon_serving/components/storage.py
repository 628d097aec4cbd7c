"""Where a node's `modelUri` points, as a local directory: a local path, `file://`,
`pvc://<claim>/<path>` (under `pvc_root`), or `s3://` / `gs://` (fsspec; downloaded once into
a cache directory keyed by the URI, atomically, shared by every process of the machine).

STUB: the interface is fixed; the body is being written (issue 12).
"""

from __future__ import annotations

from pathlib import Path

from seldon_serving.protocol.errors import ServingError


class ModelUriError(ServingError):
    """A modelUri we cannot turn into a readable local directory; the sentence names the URI."""


def resolve_model_uri(uri: str, *, pvc_root: Path | None = None, cache_dir: Path | None = None) -> Path:
    """The local directory (or file) holding the model `uri` names; ModelUriError if there is none."""
    raise NotImplementedError
