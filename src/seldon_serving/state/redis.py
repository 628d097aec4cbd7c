"""Redis state store: state shared by workers on several hosts (the role Redis had in Seldon).

Layout, under a prefix (default "seldon-serving"), with namespace and key
length-prefixed so that no pair of names can collide:
- `<p>:kv:<len(ns)>:<ns>:<key>`  hash {d: JSON bytes, v: version}
- `<p>:once:<len(ns)>:<ns>:<key>` sorted set of applied tokens scored by version
- `<p>:keys:<ns>`                  set of the namespace's keys (for `items`)
- `<p>:seq`                        store-wide version counter (INCR)

`update` is optimistic, because `fn` is Python and cannot run inside Redis: read
value + version + token in one round trip, compute `fn`, then a Lua script
commits only if the version is still the one read (compare-and-set), else
retry.  Two round trips, no WATCH.  Consequently `fn` may run more than once
when processes collide: it must be a pure function of its argument.
Scripts touch the store-wide counter, so Redis Cluster is not supported
(standalone or Sentinel-managed servers are).  Durability is the server's: run Redis with `appendonly yes`
(a warning is logged when it is off).
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from typing import TYPE_CHECKING, Any

from ._codec import decode, encode
from .base import JSON, Updater

if TYPE_CHECKING:
    import redis as redis_module

DEFAULT_ONCE_LIMIT = 100_000
DEFAULT_PREFIX = "seldon-serving"
_LOCK_STRIPES = 64

log = logging.getLogger(__name__)

# Everything but `update` is a single script: atomic and one round trip.
_PUT = """
local v = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], 'd', ARGV[1], 'v', v)
redis.call('SADD', KEYS[2], ARGV[2])
return v
"""
# Compare-and-set on the version, which is unique per write: when it is still the
# one that was read, nothing (no write, no delete, no token) happened since.
_COMMIT = """
local seen = redis.call('HGET', KEYS[1], 'v') or '0'
if seen ~= ARGV[1] then
    return 0
end
local v = redis.call('INCR', KEYS[4])
redis.call('HSET', KEYS[1], 'd', ARGV[2], 'v', v)
redis.call('SADD', KEYS[3], ARGV[3])
local limit = tonumber(ARGV[5])
if limit > 0 then
    redis.call('ZADD', KEYS[2], v, ARGV[4])
    redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -limit - 1)
end
return v
"""
_DELETE = """
local n = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[3], ARGV[1])
return n
"""


def _import_redis() -> Any:
    try:
        import redis
    except ImportError as exc:
        raise ImportError(
            "the Redis state store needs the 'redis' package: pip install 'seldon-serving[redis]'"
        ) from exc
    return redis


class RedisStore:
    """A `StateStore` in a Redis server, shared by every process that opens the same URL and prefix."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        once_limit: int = DEFAULT_ONCE_LIMIT,
        client: redis_module.Redis | None = None,
    ) -> None:
        if once_limit < 1:
            raise ValueError("once_limit must be >= 1")
        redis = _import_redis()
        self.url = url
        self._redis = redis
        self._prefix = prefix
        self._once_limit = once_limit
        # redis-py's pool notices a fork (pid check) and reconnects in the child.
        self._client: redis_module.Redis = client or redis.Redis.from_url(url)
        self._client.ping()  # fail at open, not on the first request
        self._put_script = self._client.register_script(_PUT)
        self._delete_script = self._client.register_script(_DELETE)
        self._commit_script = self._client.register_script(_COMMIT)
        self._seq_key = f"{prefix}:seq"
        self._locks_pid = os.getpid()
        self._locks = [threading.Lock() for _ in range(_LOCK_STRIPES)]
        self._warn_if_not_durable()

    def __repr__(self) -> str:
        return f"RedisStore({self.url!r}, prefix={self._prefix!r})"

    def __enter__(self) -> RedisStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, namespace: str, key: str) -> JSON | None:
        return decode(self._client.hget(self._kv(namespace, key), "d"))

    def version(self, namespace: str, key: str) -> int:
        found = self._client.hget(self._kv(namespace, key), "v")
        return 0 if found is None else int(found)

    def items(self, namespace: str) -> dict[str, JSON]:
        members = self._client.smembers(self._keys(namespace))
        keys = sorted(k.decode() if isinstance(k, bytes) else str(k) for k in members)
        pipe = self._client.pipeline(transaction=False)
        for key in keys:
            pipe.hget(self._kv(namespace, key), "d")
        # A key deleted between the two round trips reads as None: leave it out.
        return {key: decode(data) for key, data in zip(keys, pipe.execute(), strict=True) if data is not None}

    def put(self, namespace: str, key: str, value: JSON) -> None:
        keys = [self._kv(namespace, key), self._keys(namespace), self._seq_key]
        self._put_script(keys=keys, args=[encode(value), key])

    def delete(self, namespace: str, key: str) -> bool:
        keys = [self._kv(namespace, key), self._once(namespace, key), self._keys(namespace)]
        return bool(self._delete_script(keys=keys, args=[key]))

    def update(self, namespace: str, key: str, fn: Updater, *, once: str | None = None) -> JSON:
        """Atomic read-modify-write; `fn` runs again if another process wrote the key meanwhile."""
        kv, tokens = self._kv(namespace, key), self._once(namespace, key)
        keys = [kv, tokens, self._keys(namespace), self._seq_key]
        attempt = 0
        # Threads of this process take turns on a key: only other processes can make
        # the commit fail, instead of every thread retrying against every other one.
        with self._key_lock(namespace, key):
            while True:
                # One round trip, one snapshot: the value, its version, the token.
                pipe = self._client.pipeline(transaction=True)
                pipe.hmget(kv, ["d", "v"])
                if once is not None:
                    pipe.zscore(tokens, once)
                (data, version), *token_score = pipe.execute()
                current = decode(data)
                if token_score and token_score[0] is not None:
                    return current
                new = encode(fn(current))
                args = [version or b"0", new, key, once or "", self._once_limit if once is not None else 0]
                if self._commit_script(keys=keys, args=args):
                    return decode(new)
                attempt += 1
                # Spread the retries of processes that collided on a hot key.
                time.sleep(random.uniform(0, min(0.01, 0.0002 * attempt)))

    def close(self) -> None:
        self._client.close()

    def _key_lock(self, namespace: str, key: str) -> threading.Lock:
        if self._locks_pid != os.getpid():
            # A forked child: the copied locks may be held by a thread that does not
            # exist here.  (Two child threads racing here at worst use different
            # locks: the compare-and-set still keeps updates atomic.)
            self._locks = [threading.Lock() for _ in range(_LOCK_STRIPES)]
            self._locks_pid = os.getpid()
        return self._locks[hash((namespace, key)) % _LOCK_STRIPES]

    def _kv(self, namespace: str, key: str) -> str:
        return f"{self._prefix}:kv:{len(namespace)}:{namespace}:{key}"

    def _once(self, namespace: str, key: str) -> str:
        return f"{self._prefix}:once:{len(namespace)}:{namespace}:{key}"

    def _keys(self, namespace: str) -> str:
        return f"{self._prefix}:keys:{namespace}"

    def _warn_if_not_durable(self) -> None:
        try:
            appendonly = self._client.config_get("appendonly").get("appendonly")
        except self._redis.RedisError:
            return  # CONFIG is often disabled on managed Redis: nothing to check
        if appendonly in ("no", b"no"):
            log.warning(
                "Redis at %s runs without appendonly: state written since the last snapshot"
                " is lost if the server stops",
                self.url,
            )
