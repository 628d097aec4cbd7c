"""Where a node's `modelUri` points, as a local directory: a local path, `file://`,
`pvc://<claim>/<path>` (under `pvc_root`), or `s3://` / `gs://` (fsspec; downloaded once into
a cache directory keyed by the URI, atomically, shared by every process of the machine).

The schemes are Seldon 1.x's storage initializer's.  What a remote URI is resolved to mirrors
a local one: a prefix (a "directory") is a directory, a single object is that file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote

from seldon_serving.protocol.errors import ServingError

SUPPORTED = "a local path, file://<path>, pvc://<claim>/<path>, s3://<bucket>/<key> or gs://<bucket>/<path>"

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


class ModelUriError(ServingError):
    """A modelUri we cannot turn into a readable local directory; the sentence names the URI."""


def resolve_model_uri(uri: str, *, pvc_root: Path | None = None, cache_dir: Path | None = None) -> Path:
    """The local directory (or file) holding the model `uri` names; ModelUriError if there is none.

    Local paths (and `file://`, `pvc://`) are used where they are, never copied; relative ones
    are relative to the working directory.  The answer is always an absolute path.
    """
    text = uri.strip()
    if not text:
        raise ModelUriError(f"the modelUri is empty; give {SUPPORTED}")
    match = _SCHEME.match(text)
    if match is None:
        return _local(uri, Path(text))
    scheme = match.group(1).lower()
    rest = text[match.end() :]
    if scheme == "file":
        # Seldon's storage strips the prefix: file:///abs is absolute, file://rel is relative.
        if rest.startswith("localhost/"):
            rest = rest[len("localhost") :]
        if not rest:
            raise ModelUriError(f"modelUri {uri!r} names no path; write file:///absolute/path/to/model")
        return _local(uri, Path(unquote(rest)))
    if scheme == "pvc":
        return _local(uri, _pvc_path(uri, rest, pvc_root))
    if scheme in ("s3", "gs"):
        raise ModelUriError(f"modelUri {uri!r}: {scheme}:// is not supported yet")
    raise ModelUriError(f"modelUri {uri!r} has the unsupported scheme {scheme}://; give {SUPPORTED}")


def _pvc_path(uri: str, rest: str, pvc_root: Path | None) -> Path:
    claim, _, inside = rest.partition("/")
    if not claim:
        raise ModelUriError(f"modelUri {uri!r} names no claim; write pvc://<claim>/<path>")
    if pvc_root is None:
        raise ModelUriError(
            f"modelUri {uri!r} is on a PersistentVolumeClaim: give --pvc-root, the directory "
            f"where claims are mounted (the model is then read from <pvc-root>/{claim}/{inside})"
        )
    inside_path = Path(unquote(inside))
    # A claim is one directory of pvc_root: `..` would read beside it.
    if ".." in inside_path.parts or inside_path.is_absolute() or claim in (".", ".."):
        raise ModelUriError(f"modelUri {uri!r} leaves its claim (a path inside it may not hold '..')")
    return pvc_root / claim / inside_path


def _local(uri: str, path: Path) -> Path:
    """`path` made absolute, after checking it exists and can be read."""
    path = Path(os.path.expanduser(path)).absolute()
    try:
        is_dir = path.is_dir()
        exists = is_dir or path.exists()
    except OSError as exc:  # e.g. a parent directory we may not search
        raise ModelUriError(f"modelUri {uri!r}: {path} cannot be read ({exc.strerror})") from None
    if not exists:
        raise ModelUriError(f"modelUri {uri!r}: {path} does not exist")
    unreadable = _unreadable(path) if is_dir else (None if _readable_file(path) else path)
    if unreadable is not None:
        raise ModelUriError(f"modelUri {uri!r}: {unreadable} cannot be read (permission denied)")
    return path


def _readable_file(path: Path) -> bool:
    # Opening it is the only test that holds for every user (os.access says yes to root and
    # no to files an ACL lets us read).
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))  # non-blocking: a FIFO must not hang us
    except OSError:
        return False
    return True


def _unreadable(directory: Path) -> Path | None:
    """The first thing in `directory` (itself, or a file directly in it) we cannot read, if any.

    Only the top level: a model directory is a handful of files, and a wrong modelUri pointing
    at a large tree should not be walked whole.
    """
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return directory
    for entry in entries:
        try:
            is_file = entry.is_file()
        except OSError:
            return Path(entry.path)
        if is_file and not _readable_file(Path(entry.path)):
            return Path(entry.path)
    return None
