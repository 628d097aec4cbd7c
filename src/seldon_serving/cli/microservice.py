"""`seldon microservice` and the drop-in `seldon-core-microservice`.

`seldon microservice --server sklearn --model-uri URI` serves a saved model with a model
server (a built-in, or `NAME=module:Class`, or a name from `--server-config`) instead of a
class of the user's: the modelUri is made local first (`--pvc-root`, `--model-cache`) and
given to the server's class as its `model_uri` parameter.
"""

from __future__ import annotations

import importlib
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
from seldon_serving.cli.options import (
    PORT,
    model_places,
    model_places_options,
    server_config_option,
    server_options,
    server_settings,
    state_store_option,
)
from seldon_serving.components.loader import ComponentLoadError
from seldon_serving.components.servers.registry import ModelServer, ServerParameterError
from seldon_serving.protocol.errors import ServingError
from seldon_serving.settings import ComponentSettings, ModelPlaces

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
    model_name: str | None,
    max_batch_size: int,
    max_batch_time_ms: float,
    host: str,
    max_message_size: int,
    log_level: str,
    state_dir: Path | None,
    state_store: str | None,
    metrics_port: int | None,
    metrics_path: str,
    model_metadata: str | None = None,
    uds: str | None = None,
    **connection: Any,
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
        model_name=model_name or None,
        max_batch_size=max_batch_size,
        max_batch_time_ms=max_batch_time_ms,
        state_dir=state_dir,
        state_store=state_store or None,
        model_metadata=model_metadata,
        **_seldon_environment(service_type),
    )
    if uds:
        http = grpc = None  # REST on the socket only: nothing listens on TCP
    server = server_settings(host, http, grpc, workers, max_message_size, log_level, **connection)
    if uds:
        server = replace(server, uds=uds)
    if metrics_port is not None:
        path = metrics_path if metrics_path.startswith("/") else "/" + metrics_path
        server = replace(server, metrics_port=metrics_port, metrics_path=path)
    return run_microservice(component, server)


def microservice_options(metrics_port: int | None, interface_required: bool = True) -> Callable[[FC], FC]:
    """The options of both commands; they differ in whether metrics get a port of their own by
    default (Seldon's wrapper: 6000), and in whether the class may be left out (`--server`)."""
    return lambda fn: _with_options(fn, metrics_port, interface_required)


def _with_options(fn: FC, metrics_port: int | None, interface_required: bool) -> FC:
    options = [
        click.argument("interface_name", required=interface_required),
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
            "--model-name",
            default=None,
            envvar="SELDON_MODEL_NAME",
            help="The model's name in the Open Inference Protocol (V2) paths, /v2/models/NAME/... "
            "[$SELDON_MODEL_NAME; default: the class name].",
        ),
        click.option(
            "--max-batch-size",
            type=click.IntRange(min=1),
            default=1,
            envvar="SELDON_MAX_BATCH_SIZE",
            show_default=True,
            help="Adaptive batching: stack up to N concurrent predict requests into one predict call "
            "(1: no batching) [$SELDON_MAX_BATCH_SIZE].",
        ),
        click.option(
            "--max-batch-time-ms",
            type=click.FloatRange(min=0),
            default=0.0,
            envvar="SELDON_MAX_BATCH_TIME_MS",
            show_default=True,
            help="Adaptive batching: how long the first request of a batch waits for others "
            "[$SELDON_MAX_BATCH_TIME_MS].",
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


# --- model servers: `seldon microservice --server NAME --model-uri URI` ------------------------


def _model_server(name: str, server_config: Path | None) -> ModelServer:
    """The server `--server` names: a built-in (sklearn, SKLEARN_SERVER), NAME=module:Class, or a
    name the config file registers; its framework must be importable."""
    from seldon_serving.components.servers import known_servers, load_server_config, register_server
    from seldon_serving.components.servers import server_for as find_server

    if server_config is not None:
        load_server_config(server_config)
    server = register_server(name) if "=" in name else find_server(name)
    if server is None:
        names = ", ".join(s.short if s.builtin else s.implementation for s in known_servers())
        raise CliError(
            f"--server {name!r} is not a model server: give one of {names}, or NAME=module:Class for "
            "a server of your own"
        )
    problem = server.missing()
    if problem is not None:
        raise CliError(problem)
    return server


def _server_parameters(
    server: ModelServer, parameters: str | None, model_uri: str | None, places: ModelPlaces
) -> tuple[str, str]:
    """(the modelUri as given, the --parameters JSON for the server's class with `model_uri`
    replaced by the model's local path)."""
    from seldon_serving.components.parameters import parse_parameters
    from seldon_serving.components.storage import resolve_model_uri

    typed = parse_parameters(parameters)  # BadParameter: one sentence naming the parameter
    uri = model_uri if model_uri is not None else typed.get("model_uri")
    if uri is None or not str(uri).strip():
        raise CliError(f"--server {server.short} needs --model-uri URI: where the saved model is")
    local = resolve_model_uri(str(uri), pvc_root=places.pvc_root, cache_dir=places.cache_dir)
    given = json.loads(parameters) if parameters and parameters.strip() else []  # checked above: a list
    entries = [e for e in given or [] if e.get("name") != "model_uri"]
    entries.append({"name": "model_uri", "value": str(local), "type": "STRING"})
    return str(uri), json.dumps(entries)


def _check_model(dotted: str, parameters: str) -> list[str]:
    """Build the server and load its model once in a child process, so that a model that does not
    load is one sentence here rather than a failure in each of the workers; returns the modules
    loading imported.  A child, not this process: xgboost and LightGBM models loaded before the
    workers fork hang them (OpenMP)."""
    from seldon_serving.components.loader import instantiate, load_user_class
    from seldon_serving.components.parameters import parse_parameters

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what happened, never run anything else
        os.close(read_end)
        before = set(sys.modules)
        report: dict[str, Any] = {}
        try:
            instance = instantiate(load_user_class(dotted, [Path.cwd()]), parse_parameters(parameters))
            load = getattr(instance, "load", None)
            if callable(load):
                load()
            report["modules"] = [m for m in sys.modules if m not in before]
        except ServerParameterError as exc:
            report["parameter"] = str(exc)
        except ServingError as exc:
            report["error"] = str(exc) or type(exc).__name__
        except BaseException as exc:
            report["error"] = f"loading the model failed: {type(exc).__name__}: {exc}"
        finally:
            with os.fdopen(write_end, "w") as out:
                json.dump(report, out)
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as stream:
        text = stream.read()
    _, status = os.waitpid(pid, 0)
    report = json.loads(text) if text else {}
    if "parameter" in report:
        raise ServerParameterError(report["parameter"])
    if "error" in report:
        raise ComponentLoadError(report["error"])
    if status != 0 or "modules" not in report:
        raise ComponentLoadError(f"loading the model killed the process that tried (wait status {status})")
    return list(report["modules"])


def _import_quietly(modules: list[str]) -> None:
    """Import what loading the model imported, so that every worker inherits it instead of
    importing it again (importing is safe before a fork; running OpenMP code is not)."""
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception:
            continue


def serve_model(
    server_name: str,
    model_uri: str | None,
    server_config: Path | None,
    places: ModelPlaces,
    api_type: str | None,
    **kwargs: Any,
) -> int:
    """`seldon microservice --server`: the model made local, the server's class served with it."""
    server = _model_server(server_name, server_config)
    uri, parameters = _server_parameters(server, kwargs.pop("parameters"), model_uri, places)
    try:
        if kwargs["workers"] > 1:
            _import_quietly(_check_model(server.dotted, parameters))
        return start_microservice(server.dotted, api_type, parameters=parameters, **kwargs)
    except ServerParameterError:
        raise  # it names the parameter: the model is not at fault
    except ComponentLoadError as exc:
        raise CliError(f"{server.implementation} cannot serve modelUri {uri!r}: {exc}") from None


@click.command("microservice")
@microservice_options(metrics_port=None, interface_required=False)
@click.option(
    "--server",
    "server_name",
    default=None,
    metavar="NAME",
    help="Serve a saved model with this model server instead of a class: sklearn, xgboost, lightgbm, "
    "mlflow (or SKLEARN_SERVER, ...), a name from --server-config, or NAME=module:Class.",
)
@click.option(
    "--model-uri",
    default=None,
    metavar="URI",
    help="Where the model --server serves is: a path, file://, pvc://CLAIM/PATH, s3:// or gs:// "
    "(default: the parameter model_uri).",
)
@server_config_option
@model_places_options
@one_sentence
def microservice_command(
    interface_name: str | None,
    api_type: str | None,
    server_name: str | None,
    model_uri: str | None,
    server_config: Path | None,
    pvc_root: Path | None,
    model_cache: Path | None,
    **kwargs: Any,
) -> None:
    """Serve a Python class as a Seldon component (REST and gRPC), or a saved model with a model
    server (--server sklearn --model-uri ./model).

    INTERFACE_NAME is `Module` (class Module in Module.py of the working directory)
    or `package.module.Class`.
    """
    if server_name is not None:
        if interface_name is not None:
            raise CliError(
                f"give a class ({interface_name}) or --server {server_name}, not both: a model server "
                "is the class that serves the model"
            )
        places = model_places(pvc_root, model_cache)
        sys.exit(serve_model(server_name, model_uri, server_config, places, api_type, **kwargs))
    if interface_name is None:
        raise CliError(
            "give the class to serve (INTERFACE_NAME), or a saved model: --server NAME --model-uri URI"
        )
    if model_uri is not None:
        raise CliError(
            "--model-uri is the model of a model server: give --server too (e.g. --server sklearn)"
        )
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
