"""Adaptive batching of `predict`: concurrent requests to one node stacked into one call.

A request whose data can be stacked (`stack_key`) joins a queue.  The first request of a batch
waits at most `max_batch_time_ms` from its arrival for others (or until `max_batch_size` are
queued); then the queued requests run as one `predict` call per kind (requests whose
`stack_key`s are equal), on their arrays concatenated along the first axis, and the answer is
cut back into each request's rows.  Requests that arrive while a batch runs queue for the next
one, so under load batches fill without waiting, and at low load a request waits at most the
batch time.

What stays per request: the answer's rows, meta (puid, the request's own tags, routing,
requestPath) and errors.  What is per call: the tags and custom metrics the class returns (or
its `tags()` / `metrics()` give) apply to every request of the batch; the microservice exports
the metrics once per call.  A class whose predict takes `meta` is called with an empty meta
for a batch of several requests (there is no one request's meta to give it).

- A request that cannot be stacked with anything (strData, jsonData, binData, a 0-d or 1-d
  array, zero rows, a ragged or mixed-type list) runs alone, at once, as without batching.
  Requests of different stackable kinds queued together run as one batch per kind.
- A batch of one request is that request's own call, unchanged.
- When a batched call fails, each of its requests runs alone, so one request's bad data
  fails that request only.
- An answer whose row count is not the batch's (a model that aggregates its rows, or answers
  strData) cannot be split: that batch's requests run alone, and from then on every request
  does (logged once).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from prometheus_client import Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from seldon_serving.components.meta import build_meta
from seldon_serving.protocol.message import ARRAY_FORMS, V2, SeldonMessage

__all__ = [
    "BATCH_METRICS",
    "Batcher",
    "Predict",
    "StackKey",
    "check_batching",
    "stack_key",
    "why_not_batched",
]

log = logging.getLogger("seldon_serving.batching")

Predict = Callable[[SeldonMessage, bool], Awaitable[SeldonMessage]]
"""The unbatched call: `(message, raw) -> answer` (the adapter's predict)."""

StackKey = tuple[Any, ...]

# A class with any of these gets each request as it came (a dict or a protobuf message), which
# no stacking can imitate.
_RAW_PREDICT = ("predict_rest", "predict_raw", "predict_grpc")


def check_batching(max_batch_size: Any, max_batch_time_ms: Any, where: str) -> tuple[int, float]:
    """(size, time in ms) from the two settings as given (strings from a manifest, numbers from
    the command line); ValueError, one sentence naming `where` (the setting and its owner), if
    either is not a valid value.  `where` is formatted with the setting's name."""
    size_text = str(max_batch_size).strip()
    try:
        size = int(size_text)
    except ValueError:
        size = 0
    if size < 1:
        raise ValueError(
            f"{where.format('max-batch-size')} is {max_batch_size!r}: it must be a whole number of "
            "at least 1 (1: no batching)"
        )
    try:
        time_ms = float(str(max_batch_time_ms).strip())
    except ValueError:
        time_ms = -1.0
    if not time_ms >= 0.0 or time_ms == float("inf"):  # NaN fails >= too
        raise ValueError(
            f"{where.format('max-batch-time-ms')} is {max_batch_time_ms!r}: it must be a number of "
            "milliseconds, 0 or more"
        )
    return size, time_ms


def stack_key(msg: SeldonMessage) -> tuple[StackKey, tuple[np.ndarray, ...]] | None:
    """The one rule of what can be stacked: (key, array) of a message whose array can be
    concatenated along its first axis with those of every message of an equal key, or None
    for a message that must run alone.

    Equal keys mean: the same array form (ndarray, tensor, tftensor, with the same TensorFlow
    dtype), the same feature names, the same trailing shape and the same element type (strings
    of any length count as one type).  Only arrays of two or more dimensions with at least one
    row: for a 1-d array, "rows" would be the model's guess.

    A V2 request stacks input by input: its inputs' names, datatypes and trailing shapes are
    the key, and every input must have the same number of rows (>= 1, two or more dimensions).
    Its parameters are not part of the key: a batched call gets no request's meta anyway, and
    each request's own id, puid and tags come back with its rows."""
    if msg.form == V2:
        return _v2_stack_key(msg.payload)
    if msg.form not in ARRAY_FORMS:
        return None
    payload = msg.payload
    if isinstance(payload, np.ndarray):
        array = payload
    else:
        try:
            array = np.asarray(payload)
        except ValueError:  # a ragged list: the model sees it alone, as it would unbatched
            return None
    if array.ndim < 2 or array.shape[0] == 0:
        return None
    kind = array.dtype.kind
    if kind == "O" or kind == "V":  # mixed or opaque values: no common element type
        return None
    dtype: Any = kind if kind in "US" else array.dtype.str
    return (msg.form, msg.tf_dtype, tuple(msg.names), array.shape[1:], dtype), (array,)


def _v2_stack_key(payload: Any) -> tuple[StackKey, tuple[np.ndarray, ...]] | None:
    tensors = payload.tensors
    if not tensors:
        return None
    rows = tensors[0].data.shape[0] if tensors[0].data.ndim >= 2 else 0
    if rows == 0:
        return None
    key: list[Any] = [V2]
    for tensor in tensors:
        data = tensor.data
        if data.ndim < 2 or data.shape[0] != rows:
            return None
        key.append((tensor.name, tensor.datatype, data.shape[1:]))
    return tuple(key), tuple(t.data for t in tensors)


def why_not_batched(methods: frozenset[str]) -> str | None:
    """Why a class with these methods cannot be batched (one clause), or None if it can."""
    raw = [name for name in _RAW_PREDICT if name in methods]
    if raw:
        return f"its {raw[0]} gets each request as it came"
    if "predict" not in methods:
        return "it has no predict method"
    return None


# --- Prometheus --------------------------------------------------------------------------------

SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
WAIT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class _BatchMetrics(Collector):
    """`seldon_batch_size` (requests per predict call) and `seldon_batch_wait_seconds` (how long
    a call's first request waited for its batch to close) of every batched node of this
    process.  Process-wide, as the batchers are built where no registry is at hand (the
    gateway's in-process nodes); each process's `Metrics` registers it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_labels: dict[tuple[str, ...], tuple[Histogram, Histogram]] = {}

    def histograms(self, labelnames: tuple[str, ...]) -> tuple[Histogram, Histogram]:
        with self._lock:
            found = self._by_labels.get(labelnames)
            if found is None:
                size = Histogram(
                    "seldon_batch_size",
                    "Requests stacked into one predict call by adaptive batching",
                    labelnames,
                    registry=None,
                    buckets=SIZE_BUCKETS,
                )
                wait = Histogram(
                    "seldon_batch_wait_seconds",
                    "How long the first request of a batch waited for the batch to close",
                    labelnames,
                    registry=None,
                    buckets=WAIT_BUCKETS,
                )
                found = self._by_labels[labelnames] = (size, wait)
            return found

    def collect(self) -> Iterator[Metric]:
        for size, wait in list(self._by_labels.values()):
            yield from size.collect()
            yield from wait.collect()


BATCH_METRICS = _BatchMetrics()


# --- the batcher -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Waiting:
    msg: SeldonMessage
    raw: bool
    key: StackKey
    arrays: tuple[np.ndarray, ...]  # one per input (one for Seldon's forms), rows first
    future: asyncio.Future[SeldonMessage]
    arrived: float  # loop time


class Batcher:
    """Batches the calls of `predict` (see the module doc).  One per node and worker process;
    built anywhere, used on one event loop."""

    def __init__(
        self,
        predict: Predict,
        *,
        max_batch_size: int,
        max_batch_time_ms: float,
        node: str,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        self._predict = predict
        self.max_batch_size = max_batch_size
        self.max_batch_time = max_batch_time_ms / 1000.0
        self.node = node
        self.splittable = True  # False once an answer could not be split
        self._queue: list[_Waiting] = []
        self._collector: asyncio.Task[None] | None = None
        self._full: asyncio.Future[None] | None = None  # set when the queue reaches the batch size
        self._running: set[asyncio.Task[None]] = set()  # batches in flight (kept from the GC)
        merged = {**(labels or {}), "worker_id": str(os.getpid())}
        size, wait = BATCH_METRICS.histograms(tuple(merged))
        self._size = size.labels(*merged.values())
        self._wait = wait.labels(*merged.values())

    async def predict(self, msg: SeldonMessage, *, raw: bool = True) -> SeldonMessage:
        found = stack_key(msg) if self.splittable else None
        if found is None:
            self._size.observe(1)
            self._wait.observe(0.0)
            return await self._predict(msg, raw)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[SeldonMessage] = loop.create_future()
        self._queue.append(_Waiting(msg, raw, found[0], found[1], future, loop.time()))
        if self._collector is None:
            self._collector = loop.create_task(self._collect())
        elif len(self._queue) >= self.max_batch_size and self._full is not None and not self._full.done():
            self._full.set_result(None)
        return await future

    async def _collect(self) -> None:
        """Close batches while requests are queued: when the batch is full, or when its first
        request has waited the batch time."""
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                deadline = self._queue[0].arrived + self.max_batch_time
                if len(self._queue) < self.max_batch_size and loop.time() < deadline:
                    full = self._full = loop.create_future()
                    timer = loop.call_at(deadline, _settle, full)
                    await full
                    timer.cancel()
                    self._full = None
                batch = self._queue[: self.max_batch_size]
                del self._queue[: self.max_batch_size]
                now = loop.time()
                for group in _groups(batch):
                    self._size.observe(len(group))
                    self._wait.observe(max(0.0, now - group[0].arrived))
                    task = loop.create_task(self._run(group))
                    self._running.add(task)
                    task.add_done_callback(self._running.discard)
                # Let the batch start (an inline model blocks the loop while it runs, during
                # which the next requests queue up).
                await asyncio.sleep(0)
        finally:
            self._collector = None
            self._full = None
            # Cancelled (the server stops) with requests still queued: none is left waiting.
            for waiting in self._queue:
                _fail(waiting.future, asyncio.CancelledError())
            self._queue.clear()

    async def _run(self, group: list[_Waiting]) -> None:
        if len(group) == 1:
            await self._alone(group[0])
            return
        try:
            answer = await self._predict(_stacked(group), group[0].raw)
        except asyncio.CancelledError:
            for waiting in group:
                _fail(waiting.future, asyncio.CancelledError())
            raise
        except Exception:
            # Whose data failed it is unknown: each request alone gets its own answer or error.
            await self._each_alone(group)
            return
        parts = self._split(answer, [w.arrays[0].shape[0] for w in group])
        if parts is None:
            await self._each_alone(group)
            return
        for waiting, part in zip(group, parts, strict=True):
            request = waiting.msg
            if answer.form == V2:
                reply = _v2_reply(answer.payload, part, request.payload.id)
            else:
                reply = SeldonMessage(
                    form=answer.form, payload=part, names=list(answer.names), tf_dtype=answer.tf_dtype
                )
            reply.meta = build_meta(
                request.meta,
                puid=request.meta.get("puid"),
                tags=answer.meta.get("tags"),
                metrics=answer.meta.get("metrics"),
                own_path=answer.meta.get("requestPath"),
            )
            _settle(waiting.future, reply)

    def _split(self, answer: SeldonMessage, rows: list[int]) -> list[Any] | None:
        """The answer's rows cut by the requests' row counts, or None (and no batching from now
        on) if its row count is not theirs."""
        payload = answer.payload
        total = sum(rows)
        count: int | None = None
        if answer.form == V2:
            counts = {t.data.shape[0] if t.data.ndim >= 1 else None for t in payload.tensors}
            count = counts.pop() if len(counts) == 1 else None
            if count == total:
                offsets = np.cumsum(rows)[:-1].tolist()
                per_output = [np.split(t.data, offsets) for t in payload.tensors]
                return list(zip(*per_output, strict=True))
        elif answer.is_array and isinstance(payload, np.ndarray) and payload.ndim >= 1:
            count = payload.shape[0]
        elif answer.is_array and isinstance(payload, list):
            count = len(payload)
        if count != total:
            if self.splittable:
                self.splittable = False
                what = f"{count} rows" if count is not None else f"{answer.form or 'no data'}"
                log.warning(
                    "node %r: its answer to a batch of %d rows had %s, so it cannot be split by "
                    "request: adaptive batching is off for this node from now on",
                    self.node,
                    total,
                    what,
                )
            return None
        offsets = np.cumsum(rows)[:-1].tolist()
        if isinstance(payload, np.ndarray):
            return list(np.split(payload, offsets))
        bounds = [0, *offsets, total]
        return [payload[a:b] for a, b in itertools.pairwise(bounds)]

    async def _each_alone(self, group: list[_Waiting]) -> None:
        for waiting in group:
            await self._alone(waiting)

    async def _alone(self, waiting: _Waiting) -> None:
        if waiting.future.done():  # its caller gave up (timeout, client gone)
            return
        try:
            answer = await self._predict(waiting.msg, waiting.raw)
        except asyncio.CancelledError:
            _fail(waiting.future, asyncio.CancelledError())
            raise
        except Exception as exc:
            _fail(waiting.future, exc)
        else:
            _settle(waiting.future, answer)


def _stacked(group: list[_Waiting]) -> SeldonMessage:
    """One message holding the rows of every request of `group` (equal stack keys)."""
    first = group[0].msg
    if first.form == V2:
        from seldon_serving.protocol import v2  # only V2 batches pay for the codec

        tensors = [
            v2.Tensor(tensor.name, tensor.datatype, np.concatenate([w.arrays[i] for w in group]))
            for i, tensor in enumerate(first.payload.tensors)
        ]
        return SeldonMessage(form=V2, payload=v2.InferPayload(tensors), names=list(first.names))
    return SeldonMessage(
        form=first.form,
        payload=np.concatenate([w.arrays[0] for w in group]),
        names=list(first.names),
        tf_dtype=first.tf_dtype,
    )


def _v2_reply(answer: Any, part: tuple[np.ndarray, ...], request_id: str | None) -> SeldonMessage:
    """One request's share of a batched V2 answer: every output cut to its rows, its own id."""
    from seldon_serving.protocol import v2

    tensors = [
        v2.Tensor(t.name, t.datatype, rows, dict(t.parameters))
        for t, rows in zip(answer.tensors, part, strict=True)
    ]
    payload = v2.InferPayload(
        tensors,
        id=request_id,
        parameters=dict(answer.parameters),
        model_name=answer.model_name,
        model_version=answer.model_version,
    )
    return SeldonMessage(form=V2, payload=payload, names=payload.names())


def _groups(batch: list[_Waiting]) -> list[list[_Waiting]]:
    """The batch split by stack key, in arrival order of each kind's first request."""
    groups: dict[StackKey, list[_Waiting]] = {}
    for waiting in batch:
        groups.setdefault(waiting.key, []).append(waiting)
    return list(groups.values())


def _settle(future: asyncio.Future[Any], value: Any = None) -> None:
    if not future.done():
        future.set_result(value)


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        if isinstance(exc, asyncio.CancelledError):
            future.cancel()
        else:
            future.set_exception(exc)
