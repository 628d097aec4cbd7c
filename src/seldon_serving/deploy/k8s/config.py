"""How the install configures the operator: environment variables on the operator's Deployment
and a ConfigMap mapping the seed's images to built-ins, read back into `RenderOptions`.

One place names them, so that what `seldon k8s install` writes is what the operator reads.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from seldon_serving.deploy.k8s.render import BuiltinImage, RenderOptions, default_builtin_images
from seldon_serving.protocol.errors import ServingError

RUNTIME_IMAGE = "SELDON_RUNTIME_IMAGE"
INSTALL_NAME = "SELDON_INSTALL_NAME"
INSTALL_NAMESPACE = "SELDON_INSTALL_NAMESPACE"  # the operator's own namespace (downward API)
SINGLE_NAMESPACE = "SELDON_SINGLE_NAMESPACE"
ENGINE_USER = "SELDON_ENGINE_USER"
ENGINE_SERVICE_ACCOUNT = "SELDON_ENGINE_SERVICE_ACCOUNT"
GRPC_MAX_MESSAGE_SIZE = "SELDON_GRPC_MAX_MESSAGE_SIZE"
STATE_STORE = "SELDON_STATE_STORE"
BUILTIN_IMAGES_FILE = "SELDON_BUILTIN_IMAGES_FILE"
FRONT_END = "SELDON_FRONT_END"  # "true": the install has the OAuth front end (--with-apife)
WATCH_NAMESPACE = "SELDON_WATCH_NAMESPACE"  # the single namespace watched; unset: all namespaces

# The ConfigMap `<install>-seldon-images` holds one key, mounted into the operator's pod.
IMAGES_CONFIGMAP_SUFFIX = "-seldon-images"
IMAGES_KEY = "images.json"
IMAGES_MOUNT_DIR = "/etc/seldon-serving"


class OperatorConfigError(ServingError):
    """The operator's environment or image map cannot be read."""


def images_configmap_name(install_name: str) -> str:
    return f"{install_name}{IMAGES_CONFIGMAP_SUFFIX}"


def images_document(images: Mapping[str, BuiltinImage] | None = None) -> str:
    """The ConfigMap's `images.json`: image repository -> {class, serviceType}, sorted."""
    images = default_builtin_images() if images is None else images
    doc = {repo: {"class": b.class_path, "serviceType": b.service_type} for repo, b in sorted(images.items())}
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def parse_images_document(text: str, source: str) -> dict[str, BuiltinImage]:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise OperatorConfigError(f"{source} is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise OperatorConfigError(f"{source} must map image repositories to {{class, serviceType}}")
    out: dict[str, BuiltinImage] = {}
    for repo, entry in doc.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("class"), str):
            raise OperatorConfigError(f"{source}: entry {repo!r} needs a string 'class'")
        out[repo] = BuiltinImage(entry["class"], str(entry.get("serviceType") or "MODEL"))
    return out


def operator_env(options: RenderOptions, watch_namespace: str | None) -> list[dict[str, Any]]:
    """The env of the operator's container that `options_from_env` reads back."""
    env: list[dict[str, Any]] = [
        {"name": RUNTIME_IMAGE, "value": options.runtime_image},
        {"name": INSTALL_NAME, "value": options.install_name},
        {"name": INSTALL_NAMESPACE, "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": SINGLE_NAMESPACE, "value": "true" if options.single_namespace else "false"},
        {"name": ENGINE_USER, "value": str(options.engine_user)},
        {"name": GRPC_MAX_MESSAGE_SIZE, "value": str(options.grpc_max_message_size)},
        {"name": BUILTIN_IMAGES_FILE, "value": f"{IMAGES_MOUNT_DIR}/{IMAGES_KEY}"},
    ]
    if options.state_store:
        env.append({"name": STATE_STORE, "value": options.state_store})
    if options.engine_service_account:
        env.append({"name": ENGINE_SERVICE_ACCOUNT, "value": options.engine_service_account})
    if options.front_end:
        env.append({"name": FRONT_END, "value": "true"})
    if watch_namespace:
        env.append({"name": WATCH_NAMESPACE, "value": watch_namespace})
    return env


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise OperatorConfigError(f"{name} must be a whole number, got {raw!r}") from None


def options_from_env(environ: Mapping[str, str] | None = None) -> RenderOptions:
    """The operator's `RenderOptions` from its environment (what `operator_env` wrote)."""
    environ = os.environ if environ is None else environ
    defaults = RenderOptions()
    images = defaults.builtin_images
    path = environ.get(BUILTIN_IMAGES_FILE)
    if path:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise OperatorConfigError(f"cannot read {BUILTIN_IMAGES_FILE}={path}: {exc.strerror}") from None
        images = parse_images_document(text, path)
    return RenderOptions(
        runtime_image=environ.get(RUNTIME_IMAGE) or defaults.runtime_image,
        install_name=environ.get(INSTALL_NAME) or defaults.install_name,
        install_namespace=environ.get(INSTALL_NAMESPACE) or defaults.install_namespace,
        state_store=environ.get(STATE_STORE) or None,
        engine_user=_int(environ, ENGINE_USER, defaults.engine_user),
        single_namespace=(environ.get(SINGLE_NAMESPACE) or "true").lower() == "true",
        grpc_max_message_size=_int(environ, GRPC_MAX_MESSAGE_SIZE, defaults.grpc_max_message_size),
        builtin_images=images,
        front_end=(environ.get(FRONT_END) or "").lower() == "true",
        engine_service_account=environ.get(ENGINE_SERVICE_ACCOUNT) or None,
    )
