"""`seldon microservice` and the drop-in `seldon-core-microservice`."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource
from click.decorators import FC

from seldon_serving.cli.errors import CliError, one_sentence
from seldon_serving.cli.options import PORT, server_options, server_settings, state_store_option
from seldon_serving.settings import ComponentSettings

SERVICE_TYPES = ("MODEL", "ROUTER", "TRANSFORMER", "OUTPUT_TRANSFORMER", "COMBINER", "OUTLIER_DETECTOR")
LEGACY_API_TYPES = ("REST", "GRPC", "FBS")


def _given(name: str) -> bool:
    """Whether the option was set on the command line or by its environment variable."""
    source = click.get_current_context().get_parameter_source(name)
    return source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)


def _seldon_environment(service_type: str) -> dict[str, Any]:
    """What Seldon's operator tells a graph container through its environment."""
    from seldon_serving.servers.metrics import seldon_labels

    unit_id = os.environ.get("PREDICTIVE_UNIT_ID") or None
    image = os.environ.get("PREDICTIVE_UNIT_IMAGE") or None
    try:
        predictor_labels = json.loads(os.environ.get("PREDICTOR_LABELS") or "{}")
    except ValueError:
        predictor_labels = {}
    version = predictor_labels.get("version", "") if isinstance(predictor_labels, dict) else ""
    labels = seldon_labels(
        deployment=os.environ.get("SELDON_DEPLOYMENT_ID", ""),
        predictor=os.environ.get("PREDICTOR_ID", ""),
        model=unit_id or "",
        image=image or "",
        predictor_version=str(version),
    )
    include_metrics = os.environ.get("INCLUDE_METRICS_IN_CLIENT_RESPONSE", "true").lower() == "true"
    deployment, predictor = os.environ.get("SELDON_DEPLOYMENT_ID"), os.environ.get("PREDICTOR_ID")
    namespace = os.environ.get("DEPLOYMENT_NAMESPACE") or "default"
    # In a pod, state is keyed as the gateway keys an in-process node, so replicas share it.
    state_key = None
    if deployment and predictor and unit_id:
        state_key = f"{namespace}/{deployment}/{predictor}/{unit_id}"
    return {
        "state_key": state_key,
        "service_type": service_type,
        "unit_id": unit_id,
        "image": image,
        "labels": labels,
        "include_metrics": include_metrics,
    }


def start_microservice(
    interface_name: str,
    api_type: str | None,
    service_type: str,
    parameters: str | None,
    http_port: int,
    grpc_port: int,
    legacy_port: int,
    workers: int,
    threads: int,
    host: str,
    max_message_size: int,
    log_level: str,
    state_dir: Path | None,
    state_store: str | None,
    metrics_port: int | None,
    metrics_path: str,
    model_metadata: str | None = None,
    uds: str | None = None,
) -> int:
    """Build the settings from the options and serve the class."""
    from seldon_serving.servers import logs
    from seldon_serving.servers.microservice import run_microservice

    logs.configure(log_level)
    service_type = service_type.upper()
    if service_type not in SERVICE_TYPES:
        raise CliError(f"--service-type {service_type!r} is not one of {', '.join(SERVICE_TYPES)}")
    if service_type == "OUTLIER_DETECTOR":
        service_type = "TRANSFORMER"  # Seldon 0.2's detector wrapper served /transform-input
    http: int | None = http_port
    grpc: int | None = grpc_port
    if api_type is not None:
        # The legacy `MyModel REST|GRPC` form: Seldon 1.18 ignores the API type and serves both
        # protocols on their own ports; Seldon 0.2 served the one it named on
        # PREDICTIVE_UNIT_SERVICE_PORT, which still sets that protocol's port when its own
        # variable (or flag) is not given.
        kind = api_type.upper()
        if kind not in ("REST", "GRPC"):
            raise CliError(f"API type {api_type!r} is not supported (use REST or GRPC)")
        if _given("legacy_port") and kind == "REST" and not _given("http_port"):
            http = legacy_port
        if _given("legacy_port") and kind == "GRPC" and not _given("grpc_port"):
            grpc = legacy_port
    component = ComponentSettings(
        interface_name=interface_name,
        parameters=parameters,
        threads=threads,
        state_dir=state_dir,
        state_store=state_store or None,
        model_metadata=model_metadata,
        **_seldon_environment(service_type),
    )
    if uds:
        http = grpc = None  # REST on the socket only: nothing listens on TCP
    server = server_settings(host, http, grpc, workers, max_message_size, log_level)
    if uds:
        server = replace(server, uds=uds)
    if metrics_port is not None:
        path = metrics_path if metrics_path.startswith("/") else "/" + metrics_path
        server = replace(server, metrics_port=metrics_port, metrics_path=path)
    return run_microservice(component, server)


def microservice_options(metrics_port: int | None) -> Callable[[FC], FC]:
    """The options of both commands; they differ only in whether metrics get a port of their own
    by default (Seldon's wrapper: 6000)."""
    return lambda fn: _with_options(fn, metrics_port)


def _with_options(fn: FC, metrics_port: int | None) -> FC:
    options = [
        click.argument("interface_name"),
        click.argument("api_type", required=False, type=click.Choice(LEGACY_API_TYPES, case_sensitive=False)),
        click.option("--service-type", default="MODEL", show_default=True, help="Component type."),
        click.option(
            "--parameters",
            default=None,
            envvar="PREDICTIVE_UNIT_PARAMETERS",
            help="JSON list of {name, value, type} [$PREDICTIVE_UNIT_PARAMETERS].",
        ),
        server_options(
            http_port=9000,
            grpc_port=5000,
            http_env="PREDICTIVE_UNIT_HTTP_SERVICE_PORT",
            grpc_env="PREDICTIVE_UNIT_GRPC_SERVICE_PORT",
        ),
        click.option(
            "--metrics-port",
            type=PORT,
            default=metrics_port,
            envvar="PREDICTIVE_UNIT_METRICS_SERVICE_PORT",
            show_default=True,
            help="Serve Prometheus on this port too (it is always at /metrics of the REST port) "
            "[$PREDICTIVE_UNIT_METRICS_SERVICE_PORT].",
        ),
        click.option(
            "--metrics-path",
            default="/metrics",
            envvar="PREDICTIVE_UNIT_METRICS_ENDPOINT",
            show_default=True,
            help="Path of the metrics port [$PREDICTIVE_UNIT_METRICS_ENDPOINT].",
        ),
        click.option(
            "--legacy-port",
            type=PORT,
            default=5000,
            envvar="PREDICTIVE_UNIT_SERVICE_PORT",
            hidden=True,
            help="The one port of the legacy `<Class> REST|GRPC` form.",
        ),
        click.option(
            "--threads",
            type=click.IntRange(min=0),
            default=0,
            show_default=True,
            help="Run sync user methods in a pool of N threads (0: inline).",
        ),
        click.option(
            "--model-metadata",
            default=None,
            envvar="MODEL_METADATA",
            help="The /metadata document (JSON or YAML), laid over what init_metadata() says "
            "[$MODEL_METADATA].",
        ),
        click.option(
            "--state-dir",
            type=click.Path(file_okay=False, path_type=Path),
            default=None,
            envvar="SELDON_STATE_DIR",
            help="Keep a stateful component's state (routers, detectors) in SQLite here, across "
            "restarts [$SELDON_STATE_DIR; default: shared between workers until the server stops].",
        ),
        state_store_option,
        click.option(
            "--uds",
            default=None,
            metavar="PATH",
            help="Serve REST on this Unix domain socket instead (no TCP port, no gRPC): how the "
            "gateway runs a `process` node.",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@click.command("microservice")
@microservice_options(metrics_port=None)
@one_sentence
def microservice_command(interface_name: str, api_type: str | None, **kwargs: Any) -> None:
    """Serve a Python class as a Seldon component (REST and gRPC).

    INTERFACE_NAME is `Module` (class Module in Module.py of the working directory)
    or `package.module.Class`.
    """
    sys.exit(start_microservice(interface_name, api_type, **kwargs))


@click.command("seldon-core-microservice", context_settings={"ignore_unknown_options": False})
@microservice_options(metrics_port=6000)
@click.option("--debug", is_flag=True, hidden=True, help="Show the traceback of an unexpected error.")
@click.option("--tracing", is_flag=True, hidden=True)
@click.option("--persistence", type=int, default=0, hidden=True)
@click.option("--single-threaded", type=int, default=0, hidden=True)
@click.option("--max-requests", type=int, default=0, hidden=True)
@click.option("--max-requests-jitter", type=int, default=0, hidden=True)
@click.option("--keepalive", type=int, default=2, hidden=True)
@click.option("--pidfile", default=None, hidden=True)
@click.option("--access-log", is_flag=True, hidden=True)
@click.option("--grpc-threads", type=int, default=1, hidden=True)
@click.option("--grpc-workers", type=int, default=1, hidden=True)
@one_sentence
def seldon_core_microservice_command(
    interface_name: str,
    api_type: str | None,
    debug: bool,
    tracing: bool,
    persistence: int,
    single_threaded: int,
    max_requests: int,
    max_requests_jitter: int,
    keepalive: int,
    pidfile: str | None,
    access_log: bool,
    grpc_threads: int,
    grpc_workers: int,
    **kwargs: Any,
) -> None:
    """Drop-in for Seldon's `seldon-core-microservice`: same arguments, same API, faster.

    Flags that only tuned Seldon's gunicorn/Flask server are accepted and ignored;
    Prometheus metrics are served on --metrics-port (6000) as by Seldon's wrapper, and on the
    REST port at /metrics.
    """
    if grpc_workers == 0:
        kwargs["grpc_port"] = None
    if pidfile:
        Path(pidfile).write_text(str(os.getpid()))
    sys.exit(start_microservice(interface_name, api_type, **kwargs))
