# The Seldon Serving runtime image: the `seldon` CLI (operator, engine, gateway, built-in
# components) and the `seldon-core-microservice` drop-in, on python:3.11-slim, as uid 8888.
#
#   docker build -t seldonio-serving/seldon-serving:0.1.0 .
#   docker run --rm seldonio-serving/seldon-serving:0.1.0                  # prints `seldon --help`
#   docker run --rm -p 8000:8000 seldonio-serving/seldon-serving:0.1.0 seldon engine
#
# No ENTRYPOINT: Kubernetes pods set `command:` (["seldon", "engine"], ["seldon", "k8s",
# "operator"], ["seldon", "microservice", ...]), which replaces ENTRYPOINT and CMD alike, and
# `docker run IMAGE <command>` works the same way.  Model images (`seldon build`) build FROM
# this one and run `seldon-core-microservice` from /microservice.

# --- builder: our wheel and every dependency's, installed into /install ---------------------
FROM python:3.11-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
# Only what the wheel is made of (.dockerignore keeps the rest out of the context).
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
# The operator's and Redis' clients, and every model server's framework and model stores: the
# one image runs SKLEARN_SERVER, XGBOOST_SERVER, ... nodes (`seldon k8s render` names it).
# A smaller image: --build-arg EXTRAS=k8s,redis,sklearn
ARG EXTRAS=k8s,redis,sklearn,xgboost,lightgbm,mlflow,s3,gcs
# uvloop, httptools, grpcio, numpy, orjson, ... ship manylinux wheels: nothing is compiled,
# and no compiler reaches the final stage either way.
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[${EXTRAS}]"
# Installed under a prefix the final stage copies as a whole: the wheels themselves never
# become a layer of the final image (and no BuildKit-only RUN --mount is needed).
RUN pip install --no-cache-dir --no-index --find-links /wheels --prefix /install \
        "seldon-serving[${EXTRAS}]"

# --- runtime ---------------------------------------------------------------------------------
# Same base as the builder: the interpreter path the console scripts' shebangs name.
FROM python:3.11-slim
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="Seldon Serving" \
      org.opencontainers.image.description="Seldon Core compatible model serving: operator, engine, gateway, built-in components and seldon-core-microservice." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="Seldon Serving developers" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11-slim"

# Pods run the engine as runAsUser 8888: a named user with that uid, a writable HOME, and
# /microservice (where model images put the model, as Seldon's s2i images did) owned by it.
RUN groupadd --gid 8888 seldon \
 && useradd --no-log-init --uid 8888 --gid 8888 --create-home --home-dir /home/seldon \
        --shell /usr/sbin/nologin seldon \
 && install -d -o 8888 -g 8888 /microservice

COPY --from=builder /install /usr/local

# pip as root is on purpose in model images (requirements into site-packages): no warning.
ENV PYTHONUNBUFFERED=1 \
    HOME=/home/seldon \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

USER 8888
WORKDIR /home/seldon
# 9000/5000: a microservice's REST/gRPC; 8000/5001: the engine's; 8003: the gateway's REST;
# 6000: Prometheus metrics.
EXPOSE 9000 5000 8000 5001 8003 6000
CMD ["seldon", "--help"]
