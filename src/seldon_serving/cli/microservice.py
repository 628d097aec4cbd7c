"""`seldon microservice` and the drop-in `seldon-core-microservice`."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click

from seldon_serving.cli.errors import CliError, one_sentence

SERVICE_TYPES = ("MODEL", "ROUTER", "TRANSFORMER", "OUTPUT_TRANSFORMER", "COMBINER", "OUTLIER_DETECTOR")
LEGACY_API_TYPES = ("REST", "GRPC", "FBS")


def _env_int(name: str, default: int | None) -> int | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise CliError(f"environment variable {name}={value!r} is not a port number") from exc


def start_microservice(
    interface_name: str,
    api_type: str | None,
    service_type: str,
    parameters: str | None,
    http_port: int | None,
    grpc_port: int | None,
    workers: int,
    threads: int,
    host: str,
    max_message_size: int,
    log_level: str,
    state_dir: str | None = None,
) -> int:
    """Load the user's class, build it with its typed parameters, and serve it."""
    from seldon_serving.components.loader import load_user_class
    from seldon_serving.components.parameters import parse_parameters
    from seldon_serving.servers.microservice import component_state, run_microservice, settings_from_env
    from seldon_serving.servers.runner import ServeOptions

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    service_type = service_type.upper()
    if service_type not in SERVICE_TYPES:
        raise CliError(f"--service-type {service_type!r} is not one of {', '.join(SERVICE_TYPES)}")
    if service_type == "OUTLIER_DETECTOR":
        service_type = "TRANSFORMER"  # Seldon 0.2's detector wrapper served /transform-input
    raw_parameters = parameters if parameters is not None else os.environ.get("PREDICTIVE_UNIT_PARAMETERS")
    typed = parse_parameters(raw_parameters)
    user_class = load_user_class(interface_name, [Path.cwd()])
    unit = os.environ.get("PREDICTIVE_UNIT_ID") or interface_name
    state = component_state(user_class, unit, state_dir or os.environ.get("SELDON_STATE_DIR"), workers)
    try:
        user_object = user_class(**typed, **({"state": state} if state is not None else {}))
    except Exception as exc:
        raise CliError(f"{interface_name}({', '.join(typed)}) failed: {type(exc).__name__}: {exc}") from exc

    http = http_port if http_port is not None else _env_int("PREDICTIVE_UNIT_HTTP_SERVICE_PORT", 9000)
    grpc = grpc_port if grpc_port is not None else _env_int("PREDICTIVE_UNIT_GRPC_SERVICE_PORT", 5000)
    if api_type is not None:
        # Seldon 0.2 served ONE protocol on PREDICTIVE_UNIT_SERVICE_PORT; keep that for old images.
        legacy_port = _env_int("PREDICTIVE_UNIT_SERVICE_PORT", 5000)
        if api_type.upper() == "REST":
            http, grpc = http_port or legacy_port, grpc_port
        elif api_type.upper() == "GRPC":
            http, grpc = http_port, grpc_port or legacy_port
        else:
            raise CliError(f"API type {api_type!r} is not supported (use REST or GRPC)")
    options = ServeOptions(
        host=host, http_port=http, grpc_port=grpc, workers=max(1, workers), max_message=max_message_size
    )
    settings = settings_from_env(service_type)
    settings.threads = threads
    return run_microservice(user_object, settings, options)


def microservice_options(fn: click.decorators.FC) -> click.decorators.FC:
    options = [
        click.argument("interface_name"),
        click.argument("api_type", required=False, type=click.Choice(LEGACY_API_TYPES, case_sensitive=False)),
        click.option("--service-type", default="MODEL", show_default=True, help="Component type."),
        click.option(
            "--parameters",
            default=None,
            help="JSON list of {name, value, type} (or env PREDICTIVE_UNIT_PARAMETERS).",
        ),
        click.option("--http-port", type=int, default=None, help="REST port [9000]."),
        click.option("--grpc-port", type=int, default=None, help="gRPC port [5000]."),
        click.option(
            "--workers",
            type=int,
            default=int(os.environ.get("GUNICORN_WORKERS", "1")),
            show_default=True,
            help="Worker processes (each serves REST and gRPC).",
        ),
        click.option(
            "--threads",
            type=int,
            default=0,
            show_default=True,
            help="Run sync user methods in a pool of N threads (0: inline).",
        ),
        click.option("--host", default="0.0.0.0", show_default=True),
        click.option(
            "--max-message-size",
            type=int,
            default=4 * 1024 * 1024,
            show_default=True,
            help="Largest REST body / gRPC message in bytes.",
        ),
        click.option("--log-level", default=os.environ.get("SELDON_LOG_LEVEL", "INFO"), show_default=True),
        click.option(
            "--state-dir",
            default=None,
            help="Keep a stateful component's state (routers, detectors) in SQLite here "
            "[$SELDON_STATE_DIR; default: shared between workers, not kept across restarts].",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@click.command("microservice")
@microservice_options
@one_sentence
def microservice_command(interface_name: str, api_type: str | None, **kwargs: object) -> None:
    """Serve a Python class as a Seldon component (REST and gRPC).

    INTERFACE_NAME is `Module` (class Module in Module.py of the working directory)
    or `package.module.Class`.
    """
    sys.exit(start_microservice(interface_name, api_type, **kwargs))  # type: ignore[arg-type]


@click.command("seldon-core-microservice", context_settings={"ignore_unknown_options": False})
@microservice_options
@click.option("--metrics-port", type=int, default=None, hidden=True)
@click.option("--debug", is_flag=True, hidden=True)
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
    metrics_port: int | None,
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
    **kwargs: object,
) -> None:
    """Drop-in for Seldon's `seldon-core-microservice`: same arguments, same API, faster.

    Flags that only tuned Seldon's gunicorn/Flask server are accepted and ignored;
    Prometheus metrics are served on the REST port at /metrics.
    """
    if grpc_workers == 0:
        kwargs["grpc_port"] = None
    if pidfile:
        Path(pidfile).write_text(str(os.getpid()))
    sys.exit(start_microservice(interface_name, api_type, **kwargs))  # type: ignore[arg-type]
