"""The command-line options the server commands share, each with the environment variable
that can set it (Seldon's own where Seldon had one), and the settings built from them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from seldon_serving.cli.errors import CliError
from seldon_serving.settings import (
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_MESSAGE,
    DEFAULT_REQUEST_LOGGER_QUEUE,
    ModelPlaces,
    NodeTls,
    ServerSettings,
    TlsFiles,
)

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
    """--host, --http-port, --grpc-port, --workers, --max-message-size, --log-level, and the TLS
    and connection-limit options of every port (the command takes those as `**connection` and
    hands them to `server_settings`)."""
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
        *_connection_options,
    ]

    def decorate(fn: F) -> F:
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


def pem_option(flag: str, envvar: str, help_text: str) -> Callable[[F], F]:
    """An option naming an existing PEM file, also read from `envvar`."""
    kind = click.Path(exists=True, dir_okay=False, path_type=Path)
    return click.option(flag, type=kind, default=None, envvar=envvar, help=f"{help_text} [${envvar}].")


_connection_options = [
    pem_option(
        "--tls-cert", "SELDON_TLS_CERT", "Serve every port over TLS with this certificate chain (PEM)"
    ),
    pem_option("--tls-key", "SELDON_TLS_KEY", "The private key of --tls-cert (PEM)"),
    pem_option(
        "--tls-client-ca",
        "SELDON_TLS_CLIENT_CA",
        "Mutual TLS: refuse clients without a certificate signed by this CA (PEM)",
    ),
    click.option(
        "--header-timeout",
        type=click.FloatRange(min=0, min_open=True),
        default=DEFAULT_HEADER_TIMEOUT,
        envvar="SELDON_HEADER_TIMEOUT",
        show_default=True,
        help="Seconds a client gets to send a request's headers (REST) or to open its connection "
        "(TLS and HTTP/2 handshake, gRPC); slower connections are closed [$SELDON_HEADER_TIMEOUT].",
    ),
    click.option(
        "--idle-timeout",
        type=COUNT,
        default=DEFAULT_IDLE_TIMEOUT,
        envvar="SELDON_IDLE_TIMEOUT",
        show_default=True,
        help="Seconds an idle connection is kept open, REST and gRPC [$SELDON_IDLE_TIMEOUT].",
    ),
    click.option(
        "--max-connections",
        type=COUNT,
        default=DEFAULT_MAX_CONNECTIONS,
        envvar="SELDON_MAX_CONNECTIONS",
        show_default=True,
        help="Open connections per worker process and protocol; past it a REST client is answered 503 "
        "and a gRPC connection is refused [$SELDON_MAX_CONNECTIONS].",
    ),
]


def node_tls_options(fn: F) -> F:
    """--node-ca, --node-cert, --node-key: TLS to the remote nodes of a graph."""
    options = [
        click.option(
            "--node-tls",
            is_flag=True,
            envvar="SELDON_NODE_TLS",
            help="Call remote graph nodes over TLS (https, secure gRPC), trusting the system's CAs "
            "unless --node-ca names one [$SELDON_NODE_TLS].",
        ),
        pem_option("--node-ca", "SELDON_NODE_CA", "Call remote graph nodes over TLS, trusting this CA (PEM)"),
        pem_option(
            "--node-cert",
            "SELDON_NODE_CERT",
            "Show remote graph nodes this client certificate (mutual TLS, PEM)",
        ),
        pem_option("--node-key", "SELDON_NODE_KEY", "The private key of --node-cert (PEM)"),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def server_settings(
    host: str,
    http_port: int | None,
    grpc_port: int | None,
    workers: int,
    max_message_size: int,
    log_level: str,
    **connection: Any,
) -> ServerSettings:
    """The settings of a server command; `connection` holds the TLS, connection-limit and
    remote-node TLS options the command was given."""
    cert, key = connection.get("tls_cert"), connection.get("tls_key")
    client_ca = connection.get("tls_client_ca")
    if (cert is None) != (key is None):
        raise CliError("--tls-cert and --tls-key go together: give both, or neither")
    if client_ca is not None and cert is None:
        raise CliError("--tls-client-ca needs --tls-cert and --tls-key: mutual TLS is TLS first")
    node_ca, node_cert, node_key = (connection.get(k) for k in ("node_ca", "node_cert", "node_key"))
    if (node_cert is None) != (node_key is None):
        raise CliError("--node-cert and --node-key go together: give both, or neither")
    node_tls = None
    if connection.get("node_tls") or node_ca is not None or node_cert is not None:
        node_tls = NodeTls(ca=node_ca, cert=node_cert, key=node_key)
    tls_files = None
    if cert is not None and key is not None:
        tls_files = TlsFiles(cert=cert, key=key, client_ca=client_ca)
    # Checked here, before any port is taken or worker forked: a bad file is one sentence, once.
    if tls_files is not None or node_tls is not None:
        from seldon_serving.servers import tls

        if tls_files is not None:
            tls.check_server_files(tls_files)
        if node_tls is not None:
            tls.check_node_files(node_tls)
    return ServerSettings(
        host=host,
        http_port=http_port,
        grpc_port=grpc_port,
        workers=workers,
        max_message=max_message_size,
        log_level=log_level,
        keep_alive=connection.get("idle_timeout", DEFAULT_IDLE_TIMEOUT),
        header_timeout=connection.get("header_timeout", DEFAULT_HEADER_TIMEOUT),
        max_connections=connection.get("max_connections", DEFAULT_MAX_CONNECTIONS),
        tls=tls_files,
        node_tls=node_tls,
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


def request_logger_option(*envvars: str) -> Callable[[F], F]:
    """`--request-logger-url` (the sink of graph nodes whose `logger` names no url) and
    `--request-logger-queue-size`."""
    shown = ", ".join(f"${name}" for name in envvars)
    url = click.option(
        "--request-logger-url",
        default=None,
        envvar=list(envvars),
        metavar="URL",
        help="Where a graph node's `logger: {mode: ...}` without a url of its own sends its events: "
        f"CloudEvents over http:// or https://, or JSON lines to file:///path [{shown}].",
    )
    queue = click.option(
        "--request-logger-queue-size",
        type=_Int(minimum=1),
        default=DEFAULT_REQUEST_LOGGER_QUEUE,
        envvar="SELDON_REQUEST_LOGGER_QUEUE_SIZE",
        show_default=True,
        help="Logged events that may wait for their sink, per sink and worker; more are dropped (and "
        "counted in seldon_request_logger_dropped_total) [$SELDON_REQUEST_LOGGER_QUEUE_SIZE].",
    )

    def apply(f: F) -> F:
        return url(queue(f))

    return apply


def checked_request_logger_url(url: str | None) -> str | None:
    """The checked --request-logger-url (None when not given)."""
    if not url:
        return None
    from seldon_serving.spec.validation import logger_url_problem

    problem = logger_url_problem(url)
    if problem is not None:
        raise CliError(f"--request-logger-url {url!r} cannot be used: {problem}")
    return url


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
