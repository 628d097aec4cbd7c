"""How to call one user method: found once, its signature read once, sync/async decided once.

Also the mapping of whatever a user method raises onto the error table, so the edges only
ever see `SeldonError`s (and the user's message, never a traceback, reaches the client).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np

from seldon_serving.protocol.errors import NotImplementedByComponent, SeldonError, UserCodeError, status_error

__all__ = [
    "AsyncCall",
    "DataCall",
    "FeedbackCall",
    "call_sync",
    "find_method",
    "is_not_implemented",
    "make_invoker",
    "positional_capacity",
    "positional_names",
    "takes_keyword",
    "user_error",
]

AsyncCall = Callable[..., Awaitable[Any]]

# seldon-core's optional base class defines every method as a stub raising
# SeldonNotImplementedError; an inherited stub means "not implemented", decided up front.
_STUB_MODULE = "seldon_core.user_model"
_STUB_CLASS = "SeldonComponent"
_NOT_IMPLEMENTED_NAMES = frozenset({"SeldonNotImplementedError"})


def find_method(obj: Any, name: str) -> Callable[..., Any] | None:
    """The bound method `name` of `obj`, or None if absent, not callable, or a SeldonComponent stub."""
    method: Callable[..., Any] | None = getattr(obj, name, None)
    if method is None or not callable(method):
        return None
    func = getattr(method, "__func__", method)
    if getattr(func, "__module__", None) == _STUB_MODULE and getattr(func, "__qualname__", "").startswith(
        _STUB_CLASS + "."
    ):
        return None
    return method


def _signature(func: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(func)
    except (TypeError, ValueError):  # some builtins and C callables have none
        return None


def takes_keyword(func: Callable[..., Any], name: str) -> bool:
    """Whether `func(..., name=...)` is accepted: a parameter of that name or **kwargs."""
    signature = _signature(func)
    if signature is None:
        return False
    for param in signature.parameters.values():
        if param.kind is param.VAR_KEYWORD:
            return True
        if param.name == name and param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
            return True
    return False


def positional_capacity(func: Callable[..., Any]) -> int | None:
    """How many positional arguments `func` takes (None: unlimited, or unknown)."""
    signature = _signature(func)
    if signature is None:
        return None
    count = 0
    for param in signature.parameters.values():
        if param.kind is param.VAR_POSITIONAL:
            return None
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


def positional_names(func: Callable[..., Any]) -> list[str] | None:
    """Names of the positional parameters in order (None: the signature is unknown or has *args)."""
    signature = _signature(func)
    if signature is None:
        return None
    names: list[str] = []
    for param in signature.parameters.values():
        if param.kind is param.VAR_POSITIONAL:
            return None
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            names.append(param.name)
    return names


def is_not_implemented(exc: BaseException) -> bool:
    """seldon-core's SeldonNotImplementedError (matched by name: seldon-core is not a dependency)."""
    if isinstance(exc, NotImplementedByComponent):
        return True
    return any(cls.__name__ in _NOT_IMPLEMENTED_NAMES for cls in type(exc).__mro__)


def user_error(exc: Exception) -> SeldonError:
    """The SeldonError to answer with when user code raised `exc`."""
    if isinstance(exc, SeldonError):
        return exc
    message = getattr(exc, "message", None)
    info = str(message) if message else (str(exc) or type(exc).__name__)
    if is_not_implemented(exc):
        return NotImplementedByComponent(info)
    status_code = getattr(exc, "status_code", None)
    body = _own_body(exc)
    if (
        isinstance(status_code, int)
        and not isinstance(status_code, bool)
        and (hasattr(exc, "message") or hasattr(exc, "reason") or body is not None)
    ):
        # Shaped like seldon-core's SeldonMicroserviceException, or the application error Seldon
        # documents for `model_error_handler` (status_code and to_dict()): keep its HTTP status,
        # its reason and the body its to_dict() gives.
        http_status = status_code if 400 <= status_code <= 599 else 500
        default_reason = "MICROSERVICE_BAD_DATA" if http_status < 500 else "MICROSERVICE_INTERNAL_ERROR"
        reason = getattr(exc, "reason", None) or default_reason
        if body is not None:
            status = body.get("status")
            if isinstance(status, dict) and isinstance(status.get("info"), str):
                info = status["info"]
        return status_error(http_status, str(reason), info, body)
    return UserCodeError(str(exc) or type(exc).__name__)


def _own_body(exc: Exception) -> dict[str, Any] | None:
    """The JSON body an exception gives for itself (`to_dict()`), if it is a JSON object."""
    to_dict = getattr(exc, "to_dict", None)
    if not callable(to_dict):
        return None
    try:
        body = to_dict()
        json.dumps(body)
    except Exception:  # a broken to_dict() must not hide the error it describes
        return None
    return body if isinstance(body, dict) else None


def call_sync(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a small sync user hook (tags, metrics, class_names, ...) with errors mapped."""
    try:
        return func(*args, **kwargs)
    except SeldonError:
        raise
    except Exception as exc:
        raise user_error(exc) from exc


_PLAIN_RESULTS = frozenset({np.ndarray, list, dict, str, bytes, tuple, int, float, bool, type(None)})


def make_invoker(func: Callable[..., Any], executor: Executor | None) -> AsyncCall:
    """One async callable for `func`: awaited if async, run in `executor` if given, else inline.

    Decided here, once, so a request pays no inspection.  Errors come out as SeldonErrors.
    """
    if inspect.iscoroutinefunction(func):

        async def call_async(*args: Any, **kwargs: Any) -> Any:
            try:
                return await func(*args, **kwargs)
            except SeldonError:
                raise
            except Exception as exc:
                raise user_error(exc) from exc

        return call_async

    if executor is not None:

        async def call_in_executor(*args: Any, **kwargs: Any) -> Any:
            loop = asyncio.get_running_loop()
            try:
                result = await loop.run_in_executor(executor, functools.partial(func, *args, **kwargs))
                if inspect.isawaitable(result):  # a sync-looking callable that returned a coroutine
                    result = await result
                return result
            except SeldonError:
                raise
            except Exception as exc:
                raise user_error(exc) from exc

        return call_in_executor

    async def call_inline(*args: Any, **kwargs: Any) -> Any:
        try:
            result = func(*args, **kwargs)
            # The usual answers (arrays, lists, dicts...) skip isawaitable's ABC check.
            if type(result) not in _PLAIN_RESULTS and inspect.isawaitable(result):
                result = await result
            return result
        except SeldonError:
            raise
        except Exception as exc:
            raise user_error(exc) from exc

    return call_inline


# --- call plans ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DataCall:
    """`method(X, names[, meta=...])` as the signature allows (inspected once)."""

    invoke: AsyncCall
    pass_names: bool
    pass_meta: bool

    @classmethod
    def of(cls, method: Callable[..., Any], executor: Executor | None) -> DataCall:
        capacity = positional_capacity(method)
        pass_names = capacity is None or capacity >= 2
        filled = (positional_names(method) or [])[: 2 if pass_names else 1]
        # seldon-core calls predict(X, names, meta=meta) and retries without meta on TypeError;
        # reading the signature gives the same outcome without a second call.
        pass_meta = takes_keyword(method, "meta") and "meta" not in filled
        return cls(make_invoker(method, executor), pass_names, pass_meta)

    async def __call__(self, features: Any, names: list[str] | list[list[str]], meta: Any) -> Any:
        # names: one list per message for aggregate, one list for the other methods
        args = (features, names) if self.pass_names else (features,)
        if self.pass_meta:
            return await self.invoke(*args, meta=meta)
        return await self.invoke(*args)


_FEEDBACK_POSITIONS = ("features", "feature_names")
_FEEDBACK_NAMED = ("reward", "truth", "routing")  # also the v1 order after the first two


@dataclass(frozen=True, slots=True)
class FeedbackCall:
    """`send_feedback` called by parameter name, so all three historical orders work.

    v1: (features, feature_names, reward, truth, routing=None); 0.2.x routers:
    (features, feature_names, routing, reward, truth); 0.2.x models: (features, feature_names,
    truth, reward).  Unrecognised names after the first two take the v1 order.
    """

    invoke: AsyncCall
    positional: tuple[str, ...]
    routing_keyword: bool
    # Our stateful components take `puid=` to count each feedback once per (puid, node).
    puid_keyword: bool = False

    @classmethod
    def of(cls, method: Callable[..., Any], executor: Executor | None) -> FeedbackCall:
        names = positional_names(method)
        if names is None:  # *args or no signature: seldon-core's own call
            positional: tuple[str, ...] = (*_FEEDBACK_POSITIONS, "reward", "truth")
        else:
            named = {n for n in names if n in _FEEDBACK_NAMED}
            unclaimed = [n for n in _FEEDBACK_NAMED if n not in named]
            plan: list[str] = []
            for index, name in enumerate(names):
                if name in _FEEDBACK_NAMED:
                    plan.append(name)
                elif index < len(_FEEDBACK_POSITIONS):
                    plan.append(_FEEDBACK_POSITIONS[index])
                elif unclaimed:
                    plan.append(unclaimed.pop(0))
                else:
                    break  # further parameters must have defaults
            positional = tuple(plan)
        routing_keyword = "routing" not in positional and takes_keyword(method, "routing")
        puid_keyword = "puid" not in positional and takes_keyword(method, "puid")
        return cls(make_invoker(method, executor), positional, routing_keyword, puid_keyword)

    async def __call__(self, values: dict[str, Any]) -> Any:
        args = [values[name] for name in self.positional]
        keywords: dict[str, Any] = {}
        if self.routing_keyword:
            keywords["routing"] = values["routing"]
        if self.puid_keyword and values.get("puid"):
            keywords["puid"] = values["puid"]
        return await self.invoke(*args, **keywords)
