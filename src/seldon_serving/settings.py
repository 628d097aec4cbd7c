"""Every setting of a server run, typed, in one place.

The CLI builds these from its flags and their environment variables (Seldon's own
variables included: `PREDICTIVE_UNIT_*`, `GUNICORN_WORKERS`, ...) and passes them down;
no other module reads the environment for configuration.  This module imports nothing
from the package, so every layer may use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_MAX_MESSAGE = 4 * 1024 * 1024  # the seed's grpcMaxMessageSize, used for REST bodies too
DEFAULT_STATE_DIR = ".seldon-state"
DEFAULT_OAUTH_TTL = 43200.0  # seconds an OAuth access token stays valid (Seldon's 12 h)
EXECUTION_MODES = ("inline", "thread", "process")
# How `seldon serve` runs a user class whose manifest names no mode (bench/RESULTS.md: why).
DEFAULT_EXECUTION = "process"


# Connection limits of every listening port (REST and gRPC), per worker process.
DEFAULT_HEADER_TIMEOUT = 10.0  # seconds a client gets to send a request's headers / the HTTP/2 preface
DEFAULT_IDLE_TIMEOUT = 30  # seconds an idle connection is kept
DEFAULT_MAX_CONNECTIONS = 2048  # open connections per worker; more are answered 503 and closed
DEFAULT_ADMIN_PORT = 8004
# Events a graph node's logger may have waiting per sink and worker (Seldon's log_work_buffer_size).
DEFAULT_REQUEST_LOGGER_QUEUE = 10000


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """TLS of the ports a server listens on (PEM files)."""

    cert: Path  # the server's certificate chain
    key: Path  # its private key
    client_ca: Path | None = None  # mutual TLS: clients must show a certificate this CA signed


@dataclass(frozen=True, slots=True)
class NodeTls:
    """TLS to remote graph nodes: https and secure gRPC channels (PEM files)."""

    ca: Path | None = None  # trust these roots (None: the system's)
    cert: Path | None = None  # a client certificate, for nodes that ask for one (mutual TLS)
    key: Path | None = None


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """How a server listens, shared by `seldon serve` and `seldon microservice`."""

    host: str = "0.0.0.0"
    http_port: int | None = 9000  # None: no REST edge
    grpc_port: int | None = 5000  # None: no gRPC edge
    workers: int = 1
    # The largest REST body or gRPC message, received or sent, to clients and to remote nodes.
    max_message: int = DEFAULT_MAX_MESSAGE
    graceful_timeout: float = 10.0  # seconds in-flight requests get to finish on SIGTERM
    keep_alive: int = DEFAULT_IDLE_TIMEOUT  # seconds an idle connection is kept (REST and gRPC)
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    tls: TlsFiles | None = None  # None: plain text
    node_tls: NodeTls | None = None  # None: remote graph nodes are called in plain text
    proxy_headers: bool = False  # trust X-Forwarded-* (only behind a proxy that sets them)
    log_level: str = "INFO"
    # Prometheus on a port of its own, as Seldon's wrapper serves it (None: only on the REST port).
    metrics_port: int | None = None
    metrics_path: str = "/metrics"
    # REST on this Unix domain socket instead of a TCP port (a gateway's `process` node): no
    # TCP REST port and no gRPC then.
    uds: str | None = None
    # The admin API (apply / get / delete) on a port of its own (`seldon serve`; None: none).
    admin_host: str = "127.0.0.1"
    admin_port: int | None = None

    def addresses(self) -> str:
        """`REST on host:port, gRPC on host:port` for the start-up line."""
        parts = []
        if self.uds is not None:
            parts.append(f"REST on unix:{self.uds}")
        if self.http_port is not None:
            parts.append(f"REST on {self.host}:{self.http_port}")
        if self.grpc_port is not None:
            parts.append(f"gRPC on {self.host}:{self.grpc_port}")
        if self.metrics_port is not None:
            parts.append(f"metrics on {self.host}:{self.metrics_port}{self.metrics_path}")
        if self.admin_port is not None:
            parts.append(f"admin on {self.admin_host}:{self.admin_port}")
        text = ", ".join(parts)
        return text + " (TLS)" if self.tls is not None else text


@dataclass(frozen=True, slots=True)
class ModelPlaces:
    """Where model servers find the model a node's `modelUri` names."""

    pvc_root: Path | None = None  # pvc://<claim>/<path> is <pvc_root>/<claim>/<path>
    cache_dir: Path | None = None  # where s3:// and gs:// models are downloaded (None: storage's default)


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """`seldon serve`: the gateway and its local control plane."""

    state_dir: Path = Path(DEFAULT_STATE_DIR)
    poll_interval: float = 0.2  # seconds between a worker's checks for changed deployments
    # SHA-256 digest of the admin token (--admin-token-file); None: the admin API answers only on
    # the admin port (127.0.0.1 by default), and the public port serves none of it.
    admin_token: bytes | None = field(default=None, repr=False)
    public_metrics: bool = False  # Prometheus on the public port without the admin token
    oauth: bool = False  # the OAuth API front end (Seldon's apife, the seed's withApife)
    oauth_ttl: float = DEFAULT_OAUTH_TTL
    # A state store URL (redis://...) shared with other servers; None: SQLite in state_dir.
    state_store: str | None = None
    # Run no graph: forward each deployment to its predictors' engines on the cluster (the OAuth
    # front end of a Kubernetes install, fed by the operator through the shared store).
    cluster_engines: bool = False
    execution: str = DEFAULT_EXECUTION  # user classes whose manifest names no `seldon.io/execution`
    models: ModelPlaces = field(default_factory=ModelPlaces)
    # Model servers the user registered: `NAME=module:Class` each, and a config file of them.
    servers: tuple[str, ...] = ()
    server_config: Path | None = None
    # Where a graph node's `logger` with no url of its own sends its events (http(s):// or file://).
    request_logger_url: str | None = None
    request_logger_queue: int = DEFAULT_REQUEST_LOGGER_QUEUE
    dashboard_public: bool = False  # /dashboard to other hosts than this one (loopback) too
    dashboard_payloads: bool = False  # /dashboard's recent requests show their payloads

    @property
    def state_path(self) -> Path:
        return self.state_dir / "state.db"

    @property
    def store_target(self) -> str:
        """What `state.open_store` opens: the shared store if one is named, else the SQLite file."""
        return self.state_store or str(self.state_path)


@dataclass(frozen=True, slots=True)
class ComponentSettings:
    """`seldon microservice`: one component, as Seldon's environment describes it."""

    interface_name: str
    service_type: str = "MODEL"
    parameters: str | None = None  # JSON list of {name, value, type} (PREDICTIVE_UNIT_PARAMETERS)
    unit_id: str | None = None  # the graph node's name (PREDICTIVE_UNIT_ID)
    image: str | None = None  # PREDICTIVE_UNIT_IMAGE
    threads: int = 0  # 0: call sync user methods inline; N: in a pool of N threads
    state_dir: Path | None = None  # where a stateful component keeps its state across restarts
    # A state store URL (redis://...) shared by every replica of this component (wins over state_dir).
    state_store: str | None = None
    # Its key there: <namespace>/<deployment>/<predictor>/<node> (the gateway's own key for an
    # in-process node) when the operator's environment names them, else microservice/<node>.
    state_key: str | None = None
    model_metadata: str | None = None  # MODEL_METADATA: the /metadata document, JSON or YAML
    # Seldon's default Prometheus labels, from the operator's environment (deployment, predictor,
    # model, image and their versions).
    labels: dict[str, str] = field(default_factory=dict)
    # INCLUDE_METRICS_IN_CLIENT_RESPONSE: custom metrics also go back in the answer's meta.
    include_metrics: bool = True
    # The model's name in the Open Inference Protocol (V2) paths; None: the class name.
    model_name: str | None = None
    # Adaptive batching of predict: up to this many concurrent requests in one call (1: none),
    # waiting at most max_batch_time_ms for the batch to fill.
    max_batch_size: int = 1
    max_batch_time_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """`seldon engine`: one predictor of a deployment, in its pod (Seldon's service orchestrator)."""

    predictor: str | None = None  # ENGINE_PREDICTOR: base64 of the PredictorSpec JSON
    predictor_file: Path = Path("deploymentdef.json")  # read when `predictor` is not given
    deployment_name: str = ""  # DEPLOYMENT_NAME
    namespace: str = "default"  # DEPLOYMENT_NAMESPACE
    state_store: str | None = None  # shared by every replica of the engine (the install's Redis)
    # Where a graph node's `logger` with no url of its own sends its events (Seldon's
    # REQUEST_LOGGER_DEFAULT_ENDPOINT).
    request_logger_url: str | None = None
    request_logger_queue: int = DEFAULT_REQUEST_LOGGER_QUEUE
