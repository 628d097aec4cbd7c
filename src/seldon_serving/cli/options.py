"""The command-line options the server commands share, each with the environment variable
that can set it (Seldon's own where Seldon had one), and the settings built from them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from seldon_serving.settings import DEFAULT_MAX_MESSAGE, ModelPlaces, ServerSettings

F = TypeVar("F", bound=Callable[..., Any])


class _Int(click.types.IntParamType):
    """An integer option whose error names the environment variable when the value came from it."""

    def __init__(self, minimum: int | None = None) -> None:
        self.minimum = minimum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            number = super().convert(value, param, ctx)
            if self.minimum is not None and number < self.minimum:
                self.fail(f"{number} is smaller than {self.minimum}", param, ctx)
            return number
        except click.BadParameter as exc:
            if ctx is not None and param is not None and param.name is not None:
                source = ctx.get_parameter_source(param.name)
                envvar = getattr(param, "envvar", None)
                if source is ParameterSource.ENVIRONMENT and isinstance(envvar, str):
                    exc.param_hint = f"environment variable {envvar}"
            raise


PORT = _Int(minimum=0)
COUNT = _Int(minimum=1)


def server_options(
    *, http_port: int, grpc_port: int, http_env: str | None, grpc_env: str | None
) -> Callable[[F], F]:
    """--host, --http-port, --grpc-port, --workers, --max-message-size, --log-level."""
    options = [
        click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on."),
        click.option(
            "--http-port", type=PORT, default=http_port, envvar=http_env, show_default=True, help="REST port."
        ),
        click.option(
            "--grpc-port", type=PORT, default=grpc_port, envvar=grpc_env, show_default=True, help="gRPC port."
        ),
        click.option(
            "--workers",
            type=COUNT,
            default=1,
            envvar="GUNICORN_WORKERS",
            show_default=True,
            help="Worker processes (each serves REST and gRPC).",
        ),
        click.option(
            "--max-message-size",
            type=COUNT,
            default=DEFAULT_MAX_MESSAGE,
            envvar="SELDON_MAX_MESSAGE_SIZE",
            show_default=True,
            help="Largest REST body / gRPC message in bytes, from clients and to remote graph nodes.",
        ),
        click.option(
            "--log-level", default="INFO", envvar="SELDON_LOG_LEVEL", show_default=True, help="Log level."
        ),
    ]

    def decorate(fn: F) -> F:
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


def server_settings(
    host: str,
    http_port: int | None,
    grpc_port: int | None,
    workers: int,
    max_message_size: int,
    log_level: str,
) -> ServerSettings:
    return ServerSettings(
        host=host,
        http_port=http_port,
        grpc_port=grpc_port,
        workers=workers,
        max_message=max_message_size,
        log_level=log_level,
    )


state_store_option = click.option(
    "--state-store",
    default=None,
    envvar="SELDON_STATE_STORE",
    metavar="URL",
    help="Keep router, detector (and the gateway's deployment and token) state in this shared store, "
    "e.g. redis://host:6379/0, so that replicas anywhere learn as one; also sqlite:///path or a path "
    "[$SELDON_STATE_STORE].",
)


def _path_option(flag: str, envvar: str, help_text: str, *, directory: bool) -> Callable[[F], F]:
    """An option naming a file (or a directory), also read from `envvar`."""
    kind = click.Path(file_okay=not directory, dir_okay=directory, path_type=Path)
    return click.option(flag, type=kind, default=None, envvar=envvar, help=help_text)


server_config_option = _path_option(
    "--server-config",
    "SELDON_SERVER_CONFIG",
    "A YAML or JSON file mapping implementation names to module:Class (or to {class, requires, "
    "extra}): model servers of your own, as Seldon's predictor_servers ConfigMap held them "
    "[$SELDON_SERVER_CONFIG].",
    directory=False,
)


def server_registry_options(fn: F) -> F:
    """--server NAME=module:Class (repeatable) and --server-config FILE: model servers of the user's."""
    fn = server_config_option(fn)
    return click.option(
        "--server",
        "servers",
        multiple=True,
        metavar="NAME=module:Class",
        help="Let graphs name NAME as an implementation served by this class (a model server of your "
        "own; its module is found beside the manifest or among the installed packages).  Repeatable.",
    )(fn)


def register_servers(servers: tuple[str, ...], server_config: Path | None) -> None:
    """Register what --server and --server-config name (ServerRegistryError: one sentence)."""
    from seldon_serving.components.servers import load_server_config, register_server

    if server_config is not None:
        load_server_config(server_config)
    for spec in servers:
        register_server(spec)


def model_places_options(fn: F) -> F:
    """--pvc-root and --model-cache: where model servers find the models modelUris name."""
    fn = _path_option(
        "--model-cache",
        "SELDON_MODEL_CACHE",
        "Where s3:// and gs:// models are downloaded, once per URI [$SELDON_MODEL_CACHE; default: "
        "a cache directory of your user].",
        directory=True,
    )(fn)
    return _path_option(
        "--pvc-root",
        "SELDON_PVC_ROOT",
        "The directory standing for PersistentVolumeClaims: modelUri pvc://CLAIM/PATH is read from "
        "PVC_ROOT/CLAIM/PATH [$SELDON_PVC_ROOT].",
        directory=True,
    )(fn)


def model_places(pvc_root: Path | None, model_cache: Path | None) -> ModelPlaces:
    return ModelPlaces(
        pvc_root=pvc_root.expanduser().resolve() if pvc_root is not None else None,
        cache_dir=model_cache.expanduser().resolve() if model_cache is not None else None,
    )
