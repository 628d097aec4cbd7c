"""`ComponentAdapter`: one async API over any Seldon user class, old or new.

Everything that depends only on the class (which methods exist, sync or async, which
arguments each accepts, old or new `send_feedback` order) is decided in `__init__`, so a
request only pays for the call itself and for building the answer.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np

from seldon_serving.components.calling import (
    AsyncCall,
    DataCall,
    FeedbackCall,
    call_sync,
    find_method,
    make_invoker,
)
from seldon_serving.components.loader import ComponentLoadError
from seldon_serving.components.meta import build_meta, merge_metas, validate_metrics, validate_tags
from seldon_serving.components.metadata import default_metadata, validate_metadata
from seldon_serving.components.raw import (
    encode_feedback_json,
    encode_message_json,
    encode_message_list_json,
    raw_answer,
)
from seldon_serving.components.response import (
    branch_of,
    data_message,
    default_names,
    unwrap_response,
    v2_message,
    v2_raw_answer,
)
from seldon_serving.protocol.errors import (
    BadMetadata,
    BadRequest,
    NotImplementedByComponent,
    SeldonError,
    UserCodeError,
)
from seldon_serving.protocol.message import Feedback, Meta, SeldonMessage

__all__ = ["ComponentAdapter", "MetricsSink"]

MetricsSink = Callable[[list[dict[str, Any]], str], None]
"""Receives every validated batch of custom metrics with Seldon's method tag
("predict", "inputtransform", "outputtransform", "router", "aggregate", "feedback", "health")."""

_MISSING = object()
_NO_ARGUMENT = object()  # health_status_raw() takes none


@dataclass(frozen=True, slots=True)
class _Kind:
    """One operation: its plain method, raw variants (first found wins) and metrics method tag."""

    name: str
    raw_names: tuple[str, ...]  # for a JSON request (REST, in-process), first found wins
    grpc_names: tuple[str, ...]  # for a protobuf request (gRPC)
    tag: str


# As seldon-core: over REST the deprecated `*_rest` hook (dict in, dict out) comes first, over
# gRPC the deprecated `*_grpc` hook (protobuf in, protobuf out); then `*_raw`, which gets the
# request as it came: a dict over REST, a protobuf message over gRPC.
_KINDS = {
    kind.name: kind
    for kind in (
        _Kind("predict", ("predict_rest", "predict_raw"), ("predict_grpc", "predict_raw"), "predict"),
        _Kind(
            "transform_input",
            ("transform_input_rest", "transform_input_raw"),
            ("transform_input_grpc", "transform_input_raw"),
            "inputtransform",
        ),
        _Kind(
            "transform_output",
            ("transform_output_rest", "transform_output_raw"),
            ("transform_output_grpc", "transform_output_raw"),
            "outputtransform",
        ),
        _Kind("route", ("route_rest", "route_raw"), ("route_grpc", "route_raw"), "router"),
        _Kind(
            "aggregate", ("aggregate_rest", "aggregate_raw"), ("aggregate_grpc", "aggregate_raw"), "aggregate"
        ),
        _Kind(
            "send_feedback", ("send_feedback_raw",), ("send_feedback_grpc", "send_feedback_raw"), "feedback"
        ),
        _Kind("health_status", ("health_status_raw",), (), "health"),
    )
}
_HOOKS = ("tags", "metrics", "class_names", "init_metadata", "load")


def _features(msg: SeldonMessage) -> Any:
    """What the user's method receives as X: an array for DefaultData, else the raw payload."""
    try:
        return msg.user_payload()
    except ValueError as exc:
        raise BadRequest(f"data is not a rectangular array: {exc}") from None


def _branch(value: Any) -> int:
    # bool is an int subclass but never a branch; numpy integers are fine (seldon-core rejects them).
    if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
        return int(value)
    raise BadRequest(f"Routing response must be int but got {value!r}")


def _reward(value: Any) -> float:
    if isinstance(value, Real) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):  # proto3 JSON lets numbers arrive as strings ("0.9", #336)
        try:
            return float(value)
        except ValueError:
            pass
    raise BadRequest(f"feedback reward must be a number, got {value!r}")


class ComponentAdapter:
    """Gives a user object (any Seldon-style class instance) one async API.

    Sync user methods run inline, or in `executor` when one is given; `async def` methods are
    awaited.  Every answer is a SeldonMessage built by Seldon's response rules; every failure a
    `SeldonError` (user exceptions become UserCodeError or keep a SeldonMicroserviceException's
    status and reason).
    """

    def __init__(
        self,
        user_object: Any,
        *,
        unit_id: str | None = None,
        image: str | None = None,
        service_type: str = "MODEL",
        executor: Executor | None = None,
        on_metrics: MetricsSink | None = None,
        include_metrics_in_response: bool = True,
        model_metadata: Any = None,
    ) -> None:
        self.user_object = user_object
        self.unit_id = unit_id
        self.image = image
        self.service_type = service_type
        self._executor = executor
        self._on_metrics = on_metrics
        self._include_metrics = include_metrics_in_response
        # Seldon's MODEL_METADATA (parsed): laid over what init_metadata() says.
        self._model_metadata = {} if model_metadata is None else model_metadata
        self._own_path: dict[str, str] = {unit_id: image or ""} if unit_id else {}
        self._class_name = type(user_object).__name__

        found = {
            name: method
            for name in (
                *_KINDS,
                *(r for k in _KINDS.values() for r in (*k.raw_names, *k.grpc_names)),
                *_HOOKS,
            )
            if (method := find_method(user_object, name)) is not None
        }
        self._found = found
        # Can a call yield to the event loop?  (async user methods, or sync ones in a thread pool)
        self.awaits_anything = executor is not None or any(
            inspect.iscoroutinefunction(method) for method in found.values()
        )
        self._raw = self._first_found(found, executor, lambda kind: kind.raw_names)
        self._grpc_raw = self._first_found(found, executor, lambda kind: kind.grpc_names)
        self._data_calls: dict[str, DataCall] = {
            name: DataCall.of(found[name], executor)
            for name in ("predict", "transform_input", "transform_output", "route", "aggregate")
            if name in found
        }
        self._feedback = (
            FeedbackCall.of(found["send_feedback"], executor) if "send_feedback" in found else None
        )
        self._health = make_invoker(found["health_status"], executor) if "health_status" in found else None
        # Small per-response hooks always run inline (they are expected to be cheap).
        self._tags = make_invoker(found["tags"], None) if "tags" in found else None
        self._metrics = make_invoker(found["metrics"], None) if "metrics" in found else None
        # A class_names METHOD is known now; a class_names ATTRIBUTE is read per answer because
        # classes often set it in load() or predict().
        self._class_names_method = found.get("class_names")
        self._loaded = False
        self._metadata: dict[str, Any] | None = None
        self._metadata_error: SeldonError | None = None

    # --- what the class offers ------------------------------------------------------------

    @property
    def methods(self) -> frozenset[str]:
        """Names of the user methods found (seldon-core base-class stubs excluded)."""
        return frozenset(self._found)

    def implements(self, kind: str) -> bool:
        """Whether the class has its own `kind` ("predict", "route", "send_feedback", ...; a raw
        variant counts, an inherited SeldonComponent stub does not), or hook ("init_metadata",
        "load", "tags", ...)."""
        return kind in self._found or kind in self._raw or kind in self._grpc_raw

    @staticmethod
    def _first_found(
        found: dict[str, Callable[..., Any]],
        executor: Executor | None,
        names: Callable[[_Kind], tuple[str, ...]],
    ) -> dict[str, tuple[str, AsyncCall]]:
        """kind -> (the first of its hook names the class has, its invoker)."""
        chosen: dict[str, tuple[str, AsyncCall]] = {}
        for kind in _KINDS.values():
            name = next((n for n in names(kind) if n in found), None)
            if name is not None:
                chosen[kind.name] = (name, make_invoker(found[name], executor))
        return chosen

    # --- start-up ----------------------------------------------------------------------------

    def load(self) -> None:
        """Run the user's `load()` once (per worker process); later calls do nothing."""
        if self._loaded:
            return
        method = self._found.get("load")
        if method is not None:
            try:
                result = method()
                if inspect.isawaitable(result):
                    try:
                        asyncio.get_running_loop()
                    except RuntimeError:
                        asyncio.run(_as_coroutine(result))
                    else:
                        _close(result)
                        raise ComponentLoadError(
                            f"{self._class_name}.load() is async: use `await adapter.load_async()`"
                        )
            except ComponentLoadError:
                raise
            except Exception as exc:
                raise ComponentLoadError(f"{self._class_name}.load() failed: {_describe(exc)}") from exc
        self._loaded = True

    async def load_async(self) -> None:
        """`load()` from inside an event loop: async load() awaited, sync one in the executor if any."""
        if self._loaded:
            return
        method = self._found.get("load")
        if method is not None:
            try:
                await make_invoker(method, self._executor)()
            except SeldonError as exc:
                cause = exc.__cause__ if exc.__cause__ is not None else exc
                raise ComponentLoadError(f"{self._class_name}.load() failed: {_describe(cause)}") from exc
        self._loaded = True

    # --- prediction path ---------------------------------------------------------------------

    # `raw=False`: the request came over gRPC and `grpc_raw` already offered it to the hooks.

    async def predict(self, msg: SeldonMessage, *, raw: bool = True) -> SeldonMessage:
        return await self._data_method("predict", msg, default=lambda: [], raw=raw)

    async def transform_input(self, msg: SeldonMessage, *, raw: bool = True) -> SeldonMessage:
        return await self._data_method("transform_input", msg, default=None, raw=raw)

    async def transform_output(self, msg: SeldonMessage, *, raw: bool = True) -> SeldonMessage:
        return await self._data_method("transform_output", msg, default=None, raw=raw)

    async def _data_method(
        self, name: str, msg: SeldonMessage, default: Callable[[], Any] | None, raw: bool
    ) -> SeldonMessage:
        kind = _KINDS[name]
        if raw and name in self._raw:
            answer = await self._run_raw(kind, self._raw[name], _raw_argument(msg))
            if answer is not None:
                return answer
        call = self._data_calls.get(name)
        result: Any = _MISSING
        if call is not None:
            meta = msg.copy_meta() if call.pass_meta else None
            try:
                result = await call(_features(msg), msg.names, meta)
            except NotImplementedByComponent:
                result = _MISSING  # seldon-core's "not implemented": fall back to the default
        if result is _MISSING:
            if default is None:  # transforms: the identity, data and names untouched
                echo = SeldonMessage(
                    form=msg.form, payload=msg.payload, names=list(msg.names), tf_dtype=msg.tf_dtype
                )
                echo.meta = await self._answer_meta(msg.meta, msg, None, None, kind.tag)
                return echo
            result = default()
        return await self._answer(result, msg, msg.meta, kind.tag)

    async def route(self, msg: SeldonMessage, *, raw: bool = True) -> SeldonMessage:
        """The branch the user's `route()` picked, as `[[branch]]` in the request's array form."""
        kind = _KINDS["route"]
        if raw and "route" in self._raw:
            answer = await self._run_raw(kind, self._raw["route"], _raw_argument(msg))
            if answer is not None:
                return answer
        call = self._data_calls.get("route")
        if call is None:
            raise NotImplementedByComponent("Route not defined")  # Seldon's words: clients match them
        result = await call(_features(msg), msg.names, msg.copy_meta() if call.pass_meta else None)
        data, tags, metrics, _ = unwrap_response(result)
        branch = np.array([[_branch(data)]])
        answer = data_message(branch, msg, self._output_names)
        # As seldon-core: a router's answer carries only its own tags/metrics, not the request's.
        answer.meta = await self._answer_meta(None, msg, tags, metrics, kind.tag)
        return answer

    async def route_branch(self, msg: SeldonMessage) -> int:
        """Just the branch `route()` picked, for the graph walk, which uses nothing else of a
        router's answer: no answer message is built unless a raw method must answer one."""
        call = self._data_calls.get("route")
        if "route" in self._raw or call is None:
            return branch_of(await self.route(msg), self.unit_id or self._class_name)
        result = await call(_features(msg), msg.names, msg.copy_meta() if call.pass_meta else None)
        return _branch(unwrap_response(result).data)

    async def aggregate(self, msgs: list[SeldonMessage], *, raw: bool = True) -> SeldonMessage:
        """One answer from the children's answers; tags/routing/requestPath merged, metrics concatenated."""
        if not msgs:
            raise BadRequest("aggregate needs at least one message")
        kind = _KINDS["aggregate"]
        if raw and "aggregate" in self._raw:
            answer = await self._run_raw(kind, self._raw["aggregate"], encode_message_list_json(msgs))
            if answer is not None:
                return answer
        call = self._data_calls.get("aggregate")
        if call is None:
            raise NotImplementedByComponent("Aggregate not defined")
        features = [_features(m) for m in msgs]
        names = [list(m.names) for m in msgs]
        metas = [m.copy_meta() for m in msgs] if call.pass_meta else None
        result = await call(features, names, metas)
        return await self._answer(result, msgs[0], merge_metas(m.meta for m in msgs), kind.tag)

    # --- feedback and health -----------------------------------------------------------------

    async def send_feedback(self, fb: Feedback, *, raw: bool = True) -> SeldonMessage:
        """Hand a Feedback to the user's `send_feedback`; its return value (None: empty) is the answer."""
        kind = _KINDS["send_feedback"]
        if raw and "send_feedback" in self._raw:
            answer = await self._run_raw(kind, self._raw["send_feedback"], encode_feedback_json(fb))
            if answer is not None:
                return answer
        request = fb.request if fb.request is not None else SeldonMessage()
        result: Any = None
        if self._feedback is not None:
            values = {
                "features": _features(request),
                "feature_names": list(request.names),
                "reward": _reward(fb.reward),
                "truth": _features(fb.truth) if fb.truth is not None else np.array([]),
                "routing": fb.routing().get(self.unit_id) if self.unit_id else None,
                "puid": fb.response.meta.get("puid") if fb.response is not None else None,
            }
            try:
                result = await self._feedback(values)
            except NotImplementedByComponent:
                result = None
        data, tags, metrics, _ = unwrap_response(result)
        answer = data_message(np.array([]) if data is None else data, request, self._output_names)
        answer.meta = await self._answer_meta(None, request, tags, metrics, kind.tag)
        return answer

    async def health_status(self) -> SeldonMessage:
        """The user's `health_status()` answer, default strData "healthy"."""
        kind = _KINDS["health_status"]
        if "health_status" in self._raw:
            answer = await self._run_raw(kind, self._raw["health_status"], _NO_ARGUMENT)
            if answer is not None:
                return answer
        result: Any = "healthy"
        if self._health is not None:
            try:
                result = await self._health()
            except NotImplementedByComponent:
                result = "healthy"
        return await self._answer(result, SeldonMessage(), None, kind.tag)

    # --- metadata ----------------------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        """init_metadata() over the defaults (name/versions from the image), validated, computed once."""
        if self._metadata is None and self._metadata_error is None:
            try:
                self._metadata = self._build_metadata()
            except SeldonError as exc:
                self._metadata_error = exc
        if self._metadata_error is not None:
            raise self._metadata_error
        assert self._metadata is not None
        return dict(self._metadata)

    def _build_metadata(self) -> dict[str, Any]:
        user: Any = {}
        method = self._found.get("init_metadata")
        if method is not None:
            try:
                user = call_sync(method)
            except NotImplementedByComponent:
                user = {}
            except SeldonError as exc:
                raise BadMetadata(f"init_metadata() failed: {exc.info}") from exc
            if inspect.isawaitable(user):
                _close(user)
                raise BadMetadata("init_metadata() must be a plain method, not async")
            if user is None:
                user = {}
            if not isinstance(user, Mapping):
                raise BadMetadata(f"init_metadata() must return a dict, got {type(user).__name__}")
        if not isinstance(self._model_metadata, Mapping):
            kind = type(self._model_metadata).__name__
            raise BadMetadata(f"MODEL_METADATA must be a mapping of metadata fields, got {kind}")
        return validate_metadata({**default_metadata(self.image), **user, **self._model_metadata})

    # --- building answers --------------------------------------------------------------------

    def _output_names(self, array: np.ndarray) -> list[str]:
        """Seldon's class-names rule: class_names (method or attribute) for >= 2-D answers, else t:i."""
        if array.ndim < 2:
            return []
        names: Any = None
        if self._class_names_method is not None:
            try:
                names = call_sync(self._class_names_method)
            except NotImplementedByComponent:
                names = None
        else:
            attribute = getattr(self.user_object, "class_names", None)
            if attribute is not None and not callable(attribute):
                names = attribute
        if names is None:
            return default_names(array)
        if isinstance(names, str) or not hasattr(names, "__iter__"):
            raise UserCodeError(f"class_names must be a list of strings, got {names!r}")
        return [str(n) for n in names]

    async def _answer(
        self, result: Any, request: SeldonMessage, base: Meta | None, tag: str
    ) -> SeldonMessage:
        data, tags, metrics, names = unwrap_response(result)
        if request.is_v2:
            answer = v2_message(data, request, names)
        else:
            names_for = self._output_names if names is None else (lambda array: list(names))
            answer = data_message(data, request, names_for)
        answer.meta = await self._answer_meta(base, request, tags, metrics, tag)
        return answer

    async def _answer_meta(
        self,
        base: Meta | None,
        request: SeldonMessage,
        runtime_tags: Any,
        runtime_metrics: Any,
        tag: str,
    ) -> Meta:
        runtime = validate_metrics(runtime_metrics, "the returned response")
        user_metrics: list[dict[str, Any]] = []
        if self._metrics is not None:
            try:
                user_metrics = validate_metrics(await self._metrics(), "metrics()")
            except NotImplementedByComponent:
                user_metrics = []
        new_metrics = user_metrics + runtime
        if new_metrics and self._on_metrics is not None:
            self._on_metrics(new_metrics, tag)
        tags: dict[str, Any] = {}
        if self._tags is not None:
            try:
                tags = validate_tags(await self._tags(), "tags()")
            except NotImplementedByComponent:
                tags = {}
        tags.update(validate_tags(runtime_tags, "the returned response's tags"))
        return build_meta(
            base,
            puid=request.meta.get("puid"),
            tags=tags,
            metrics=new_metrics if self._include_metrics else None,
            own_path=self._own_path,
        )

    async def grpc_raw(self, name: str, request: Any) -> SeldonMessage | None:
        """A gRPC request (a protobuf message) handed to the class's protobuf-level hook for `name`
        (`predict_grpc`, else `predict_raw`, ...): its answer, or None when the class has none
        (or its raw method says not implemented), and the request goes the usual way."""
        found = self._grpc_raw.get(name)
        if found is None:
            return None
        return await self._run_raw(_KINDS[name], found, request)

    async def _run_raw(self, kind: _Kind, hook: tuple[str, AsyncCall], argument: Any) -> SeldonMessage | None:
        """The raw hook's answer, or None when it raised seldon-core's not-implemented error."""
        raw_name, invoke = hook
        try:
            result = await (invoke() if argument is _NO_ARGUMENT else invoke(argument))
        except NotImplementedByComponent:
            return None
        answer = v2_raw_answer(result, raw_name) or raw_answer(result, raw_name)
        metrics = answer.meta.get("metrics")
        if metrics:
            clean = validate_metrics(metrics, f"{raw_name}()'s meta")
            if self._on_metrics is not None:
                self._on_metrics(clean, kind.tag)
            if self._include_metrics:
                answer.meta = {**answer.meta, "metrics": clean}
            else:
                answer.meta = {k: v for k, v in answer.meta.items() if k != "metrics"}
                if answer.verbatim is not None:  # what the microservice answers as it is
                    meta = {k: v for k, v in answer.verbatim.get("meta", {}).items() if k != "metrics"}
                    answer.verbatim = {**answer.verbatim, "meta": meta}
        return answer


def _raw_argument(msg: SeldonMessage) -> Any:
    """What a raw method gets: the request as JSON (a V2 request as the V2 JSON dict)."""
    if msg.is_v2:
        from seldon_serving.protocol import v2

        obj, _ = v2.encode_json(msg.payload, response=False)
        return v2.loads(v2.dumps(obj))  # plain lists, as the request's JSON has them
    return encode_message_json(msg)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SeldonError):
        return exc.info
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _as_coroutine(awaitable: Any) -> Any:
    return await awaitable


def _close(awaitable: Any) -> None:
    """Silence 'coroutine was never awaited' for an awaitable we refuse to run."""
    close = getattr(awaitable, "close", None)
    if close is not None:
        close()
