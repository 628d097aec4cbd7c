"""Where a node's `modelUri` points, as a local directory: a local path, `file://`,
`pvc://<claim>/<path>` (under `pvc_root`), or `s3://` / `gs://` (fsspec; downloaded once into
a cache directory keyed by the URI, atomically, shared by every process of the machine).

The schemes are Seldon 1.x's storage initializer's.  What a remote URI is resolved to mirrors
a local one: a prefix (a "directory") is a directory, a single object is that file.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import re
import shutil
import socket
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from seldon_serving.protocol.errors import ServingError

SUPPORTED = "a local path, file://<path>, pvc://<claim>/<path>, s3://<bucket>/<key> or gs://<bucket>/<path>"

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_RCLONE = re.compile(r"^(s3|gs):(?!//)")


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
        rclone = _RCLONE.match(text)
        if rclone is not None:  # Seldon 1.8+'s rclone form, s3:bucket/key, names the same object
            return _remote(uri, rclone.group(1), text[rclone.end() :], cache_dir)
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
        return _remote(uri, scheme, rest, cache_dir)
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


# --- s3:// and gs:// -------------------------------------------------------------------------

_EXTRA = {"s3": ("s3fs", "s3"), "gs": ("gcsfs", "gcs")}
_TRUE = ("1", "true", "yes", "on")


def default_cache_dir() -> Path:
    """Where downloaded models go unless the caller says: `$XDG_CACHE_HOME/seldon-serving/models`
    (`~/.cache/seldon-serving/models`)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "seldon-serving" / "models"


def _env(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in _TRUE


def s3_endpoint() -> str | None:
    """The S3 endpoint the environment names, or None for AWS itself.

    `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` (botocore's, KServe's, Seldon's pre-rclone secret)
    win; else `S3_ENDPOINT` (KServe / kfserving: a host[:port], https unless `S3_USE_HTTPS=0`
    or `USE_SSL=false`) or `RCLONE_CONFIG_S3_ENDPOINT` (Seldon 1.8+'s rclone secret).
    """
    url = _env("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
    if url is not None:
        return url
    host = _env("S3_ENDPOINT", "RCLONE_CONFIG_S3_ENDPOINT")
    if host is None or "://" in host:
        return host
    https = _env("S3_USE_HTTPS", "USE_SSL")
    return ("http://" if https is not None and not _truthy(https) else "https://") + host


def gs_endpoint() -> str | None:
    """`STORAGE_EMULATOR_HOST` (Google's own clients' variable for an emulator), or None."""
    host = _env("STORAGE_EMULATOR_HOST")
    if host is None or host == "default":
        return None
    return host if "://" in host else f"http://{host}"


def _filesystem(uri: str, scheme: str) -> tuple[Any, str]:
    """An fsspec filesystem for `scheme` as the environment configures it, and its endpoint."""
    module, extra = _EXTRA[scheme]
    if not _importable(module):
        raise ModelUriError(
            f"modelUri {uri!r} needs {module}, which is not installed: pip install 'seldon-serving[{extra}]'"
        )
    if scheme == "s3":
        s3fs = importlib.import_module("s3fs")
        endpoint = s3_endpoint()
        options: dict[str, Any] = {
            "skip_instance_cache": True,  # a long-lived server must see buckets made after it started
            "endpoint_url": endpoint,
            # botocore retries an unreachable endpoint for ~10 s by default; an apply should say so sooner
            "config_kwargs": {"connect_timeout": 5, "read_timeout": 60, "retries": {"max_attempts": 3}},
        }
        if _truthy(_env("AWS_ANONYMOUS_CREDENTIAL", "S3_ANONYMOUS")):  # KServe's: a public bucket
            options["anon"] = True
        elif _env("AWS_ACCESS_KEY_ID") is None and _env("RCLONE_CONFIG_S3_ACCESS_KEY_ID") is not None:
            options["key"] = _env("RCLONE_CONFIG_S3_ACCESS_KEY_ID")
            options["secret"] = _env("RCLONE_CONFIG_S3_SECRET_ACCESS_KEY")
        if _env("S3_VERIFY_SSL") is not None and not _truthy(_env("S3_VERIFY_SSL")):
            options["client_kwargs"] = {"verify": False}
        return s3fs.S3FileSystem(**options), endpoint or "AWS S3"
    # The plain GCSFileSystem: gcsfs's default class first probes each bucket's type over gRPC,
    # which an emulator never answers (a minute's wait) and a download does not need.
    gcsfs_core = importlib.import_module("gcsfs.core")
    endpoint = gs_endpoint()
    # An emulator takes no credentials (Google's clients send none to it either); a public
    # bucket, as Seldon's examples use, is read anonymously (rclone's RCLONE_CONFIG_GS_ANONYMOUS).
    anonymous = endpoint is not None or _truthy(_env("RCLONE_CONFIG_GS_ANONYMOUS"))
    fs = gcsfs_core.GCSFileSystem(
        skip_instance_cache=True, endpoint_url=endpoint, token="anon" if anonymous else None
    )
    return fs, endpoint or "Google Cloud Storage"


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _cache_key(scheme: str, path: str, endpoint: str) -> str:
    """A directory name for the object: a hash of its URI (written one way: s3:b/k, s3://b/k/
    are one model) and its endpoint (one bucket name on two endpoints is two models), after the
    model's last path part for a person reading `ls`."""
    digest = hashlib.sha256(f"{scheme}://{path}\n{endpoint}".encode()).hexdigest()[:24]
    tail = re.sub(r"[^A-Za-z0-9._-]+", "_", path.rsplit("/", 1)[-1])[:40].lstrip(".")
    return f"{tail}-{digest}" if tail else digest


def _remote(uri: str, scheme: str, rest: str, cache_dir: Path | None) -> Path:
    path = rest.strip("/")
    bucket = path.split("/", 1)[0]
    if not bucket:
        raise ModelUriError(f"modelUri {uri!r} names no bucket; write {scheme}://<bucket>/<path>")
    fs, endpoint = _filesystem(uri, scheme)
    cache = (cache_dir if cache_dir is not None else default_cache_dir()).absolute()
    key = _cache_key(scheme, path, endpoint)
    final = cache / key
    done = _cached(final)
    if done is not None:  # the rename below makes it whole: no lock needed to read it
        return done
    try:
        cache.mkdir(parents=True, exist_ok=True)
        lock = os.open(cache / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ModelUriError(
            f"modelUri {uri!r} cannot be cached: the cache directory {cache} is not writable ({exc.strerror})"
        ) from None
    try:
        # Every process of the machine that wants this model waits here; the first downloads it
        # and the others find it done.  The kernel drops the lock if its holder dies.
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = _cached(final)
        if done is not None:
            return done
        for stale in cache.glob(f".{key}.partial-*"):  # left by a download that was killed
            shutil.rmtree(stale, ignore_errors=True)
        partial = cache / f".{key}.partial-{os.getpid()}"
        try:
            _download(uri, scheme, fs, endpoint, path, partial)
            os.rename(partial, final)  # atomic: a half-downloaded model never takes this name
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    finally:
        os.close(lock)  # releases the flock
    done = _cached(final)
    if done is None:  # pragma: no cover - the rename above made it
        raise ModelUriError(f"modelUri {uri!r} was downloaded but {final} is missing")
    return done


_SINGLE = ".single-object"  # marks a cached URI that named one object, not a prefix


def _cached(final: Path) -> Path | None:
    """The model a complete cache entry holds (the directory, or its one file), or None."""
    if not final.is_dir():
        return None
    marker = final / _SINGLE
    if marker.is_file():
        return final / marker.read_text().strip()
    return final


def _download(uri: str, scheme: str, fs: Any, endpoint: str, path: str, partial: Path) -> None:
    """Copy the object or prefix `path` names into the new directory `partial`."""
    _probe(uri, scheme, endpoint)
    try:
        info = fs.info(path)
        partial.mkdir()
        if info.get("type") == "directory":
            # A prefix (or a whole bucket) is a directory: copy everything under it.
            fs.get(path.rstrip("/") + "/", str(partial) + "/", recursive=True)
            if not any(partial.iterdir()):
                raise FileNotFoundError(path)
        else:
            name = path.rsplit("/", 1)[-1]
            fs.get_file(path, str(partial / name))
            (partial / _SINGLE).write_text(name)
    except ModelUriError:
        raise
    except Exception as exc:  # every backend raises its own: each is turned into one sentence
        raise ModelUriError(_explain(uri, scheme, fs, endpoint, path, exc)) from None


def _probe(uri: str, scheme: str, endpoint: str) -> None:
    """Fail at once when an emulator's port is closed: gcsfs retries a refused connection for
    half a minute.  Only for an explicit http(s) endpoint of gs://; s3fs fails fast by itself."""
    if scheme != "gs" or "://" not in endpoint:
        return
    parts = urlsplit(endpoint)
    host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    if host is None:
        return
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError:
        raise ModelUriError(
            f"modelUri {uri!r} cannot be downloaded: the storage endpoint {endpoint} does not answer"
        ) from None


def _explain(uri: str, scheme: str, fs: Any, endpoint: str, path: str, exc: BaseException) -> str:
    """One sentence for a failed download, in the user's terms (bucket, key, credentials)."""
    name = type(exc).__name__
    bucket, _, key = path.partition("/")
    if isinstance(exc, FileNotFoundError):
        if key and not _bucket_exists(fs, bucket):
            return f"modelUri {uri!r}: the bucket {bucket!r} does not exist (at {endpoint})"
        if key:
            return f"modelUri {uri!r}: the bucket {bucket!r} holds no object or prefix {key!r}"
        return f"modelUri {uri!r}: the bucket {bucket!r} does not exist or is empty (at {endpoint})"
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return (
            f"modelUri {uri!r} cannot be downloaded: no S3 credentials were found; set AWS_ACCESS_KEY_ID "
            "and AWS_SECRET_ACCESS_KEY (or AWS_ANONYMOUS_CREDENTIAL=true for a public bucket)"
        )
    if isinstance(exc, PermissionError):
        hint = (
            "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            if scheme == "s3"
            else "check GOOGLE_APPLICATION_CREDENTIALS"
        )
        return f"modelUri {uri!r} cannot be downloaded: access denied ({hint})"
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ClientConnectorError") or isinstance(
        exc, ConnectionError | TimeoutError
    ):
        return f"modelUri {uri!r} cannot be downloaded: the storage endpoint {endpoint} does not answer"
    if isinstance(exc, OSError) and exc.filename is not None and str(exc.filename).startswith("/"):
        return f"modelUri {uri!r} cannot be cached: {exc.filename}: {exc.strerror or exc}"
    detail = " ".join(str(exc).split())[:200] or name
    return f"modelUri {uri!r} cannot be downloaded from {endpoint}: {detail}"


def _bucket_exists(fs: Any, bucket: str) -> bool:
    try:
        fs.info(bucket)
    except FileNotFoundError:
        return False
    except Exception:  # cannot tell (e.g. no right to see the bucket itself): say the key is missing
        return True
    return True
