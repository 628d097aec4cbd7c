"""Model servers: a saved model served without writing a class (Seldon's SKLEARN_SERVER,
XGBOOST_SERVER, MLFLOW_SERVER, plus LIGHTGBM_SERVER and servers a user registers).

Each server is an ordinary Seldon user class (`__init__(model_uri, ...)`, `load()`,
`predict(X, features_names)`, `class_names`, `init_metadata()`), so it runs wherever a
class does: in a `seldon serve` graph (in any execution mode), under `seldon microservice
--server NAME --model-uri URI`, and in the runtime image on Kubernetes.  `registry` says
which implementation names stand for which class and which pip extra it needs.
"""

from .registry import (
    SERVERS,
    ModelServer,
    ServerRegistryError,
    forget_registered,
    known_servers,
    load_server_config,
    register_server,
    server_for,
)

__all__ = [
    "SERVERS",
    "ModelServer",
    "ServerRegistryError",
    "forget_registered",
    "known_servers",
    "load_server_config",
    "register_server",
    "server_for",
]
