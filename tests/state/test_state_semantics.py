"""The StateStore contract, checked identically on every backend (memory, sqlite, redis)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pytest

from seldon_serving.state import StateHandle, StateStore

NS = "routers"
StoreFactory = Callable[..., StateStore]  # the `make_store` fixture (conftest.py)


def plus_one(value: int | None) -> int:
    return (value or 0) + 1


def test_is_a_state_store(store: StateStore) -> None:
    assert isinstance(store, StateStore)


def test_missing_key(store: StateStore) -> None:
    assert store.get(NS, "nope") is None
    assert store.version(NS, "nope") == 0
    assert store.items(NS) == {}
    assert store.delete(NS, "nope") is False


@pytest.mark.parametrize(
    "value",
    [
        {"tries": [3.0, 4.5], "best": 1, "names": ["a", "b"], "seeded": True, "seed": None},
        [1, 2.5, "x", False, None, {"nested": []}],
        "text é ✓",
        0.1,
        -7,
        2**60,
        True,
    ],
)
def test_put_get_round_trip(store: StateStore, value: object) -> None:
    store.put(NS, "k", value)
    assert store.get(NS, "k") == value
    assert type(store.get(NS, "k")) is type(value)


def test_none_is_a_value_the_version_tells_apart(store: StateStore) -> None:
    store.put(NS, "k", None)
    assert store.get(NS, "k") is None
    assert store.version(NS, "k") > 0
    assert store.items(NS) == {"k": None}


def test_returned_values_are_copies(store: StateStore) -> None:
    value = {"counts": [1, 2]}
    store.put(NS, "k", value)
    value["counts"].append(3)  # the caller's object is not the stored one
    got = store.get(NS, "k")
    got["counts"].append(4)
    assert store.get(NS, "k") == {"counts": [1, 2]}
    assert store.update(NS, "k", lambda v: v) == {"counts": [1, 2]}


def test_numpy_values_come_back_as_lists(store: StateStore) -> None:
    cov = np.array([[1.0, 0.5], [0.5, 2.0]])
    store.put(NS, "k", {"cov": cov, "n": np.int64(3), "mean": np.float64(0.25)})
    assert store.get(NS, "k") == {"cov": [[1.0, 0.5], [0.5, 2.0]], "n": 3, "mean": 0.25}


def test_non_json_value_is_refused_and_nothing_changes(store: StateStore) -> None:
    store.put(NS, "k", 1)
    version = store.version(NS, "k")
    with pytest.raises(TypeError):
        store.put(NS, "k", {"bad": object()})
    with pytest.raises(TypeError):
        store.update(NS, "k", lambda v: {1, 2})
    assert store.get(NS, "k") == 1
    assert store.version(NS, "k") == version


def test_delete(store: StateStore) -> None:
    store.put(NS, "a", 1)
    store.put(NS, "b", 2)
    assert store.delete(NS, "a") is True
    assert store.delete(NS, "a") is False
    assert store.get(NS, "a") is None
    assert store.version(NS, "a") == 0
    assert store.items(NS) == {"b": 2}


def test_items_is_per_namespace(store: StateStore) -> None:
    store.put("routers", "dep/eg-router", {"best": 0})
    store.put("routers", "dep/ts-router", {"best": 1})
    store.put("detectors", "dep/outlier", {"n": 5})
    assert store.items("routers") == {"dep/eg-router": {"best": 0}, "dep/ts-router": {"best": 1}}
    assert store.items("detectors") == {"dep/outlier": {"n": 5}}
    assert store.items("tokens") == {}


def test_separators_in_names_never_collide(store: StateStore) -> None:
    store.put("a:b", "c", 1)
    store.put("a", "b:c", 2)
    store.put("a:kv:1:a", "x", 3)
    assert (store.get("a:b", "c"), store.get("a", "b:c"), store.get("a:kv:1:a", "x")) == (1, 2, 3)
    assert store.items("a") == {"b:c": 2}


def test_update_creates_and_returns_the_new_value(store: StateStore) -> None:
    seen: list[object] = []

    def fn(value: object) -> object:
        seen.append(value)
        return {"n": 1} if value is None else {"n": value["n"] + 1}  # type: ignore[index]

    assert store.update(NS, "k", fn) == {"n": 1}
    assert store.update(NS, "k", fn) == {"n": 2}
    assert seen == [None, {"n": 1}]
    assert store.get(NS, "k") == {"n": 2}
    assert store.items(NS) == {"k": {"n": 2}}


def test_once_applies_a_token_once(store: StateStore) -> None:
    assert store.update(NS, "k", plus_one, once="puid-1:eg-router") == 1
    version = store.version(NS, "k")
    # The same feedback again: skipped, the current value comes back, nothing is written.
    assert store.update(NS, "k", plus_one, once="puid-1:eg-router") == 1
    assert store.version(NS, "k") == version
    assert store.update(NS, "k", plus_one, once="puid-2:eg-router") == 2
    assert store.update(NS, "k", plus_one) == 3  # no token: always applied
    assert store.get(NS, "k") == 3


def test_once_tokens_are_per_key(store: StateStore) -> None:
    store.update(NS, "a", plus_one, once="t")
    store.update(NS, "b", plus_one, once="t")
    store.update("other", "a", plus_one, once="t")
    assert (store.get(NS, "a"), store.get(NS, "b"), store.get("other", "a")) == (1, 1, 1)


def test_put_keeps_tokens_delete_forgets_them(store: StateStore) -> None:
    store.update(NS, "k", plus_one, once="t")
    store.put(NS, "k", 10)
    assert store.update(NS, "k", plus_one, once="t") == 10
    store.delete(NS, "k")
    assert store.update(NS, "k", plus_one, once="t") == 1


def test_skipped_token_on_missing_key_returns_none(store: StateStore) -> None:
    store.update(NS, "k", plus_one, once="t")
    store.delete(NS, "k")
    store.update(NS, "k", plus_one, once="u")
    store.delete(NS, "k")
    assert store.get(NS, "k") is None


def test_failing_updater_changes_nothing(store: StateStore) -> None:
    store.put(NS, "k", 5)
    version = store.version(NS, "k")

    def boom(value: object) -> object:
        raise ValueError("reward outside [0, 1]")

    with pytest.raises(ValueError, match="reward"):
        store.update(NS, "k", boom, once="t")
    assert store.get(NS, "k") == 5
    assert store.version(NS, "k") == version
    # The token was not consumed by the failed attempt.
    assert store.update(NS, "k", plus_one, once="t") == 6


def test_updater_may_read_the_store(store: StateStore) -> None:
    store.put(NS, "config", {"step": 5})
    assert store.update(NS, "k", lambda v: (v or 0) + store.get(NS, "config")["step"]) == 5


def test_version_grows_on_every_write(store: StateStore) -> None:
    versions = [store.version(NS, "k")]
    store.put(NS, "k", 1)
    versions.append(store.version(NS, "k"))
    store.put(NS, "k", 1)  # same value: still a write
    versions.append(store.version(NS, "k"))
    store.update(NS, "k", plus_one)
    versions.append(store.version(NS, "k"))
    store.update(NS, "k", plus_one, once="t")
    versions.append(store.version(NS, "k"))
    assert versions == sorted(set(versions)), versions
    store.put(NS, "other", 1)  # other keys do not touch this key's version
    assert store.version(NS, "k") == versions[-1]
    store.delete(NS, "k")
    assert store.version(NS, "k") == 0
    store.put(NS, "k", 1)
    # Never back to a number a reader may have cached before the delete.
    assert store.version(NS, "k") > versions[-1]


def test_once_remembers_at_least_the_newest_tokens(make_store: StoreFactory) -> None:
    store = make_store(once_limit=5)
    for i in range(20):
        store.update(NS, "k", plus_one, once=f"t{i}")
    assert store.get(NS, "k") == 20
    for i in range(15, 20):  # the newest 5 are remembered
        assert store.update(NS, "k", plus_one, once=f"t{i}") == 20
    assert store.update(NS, "k", plus_one, once="t0") == 21  # long forgotten


def test_state_handle(store: StateStore) -> None:
    handle = StateHandle(store, "detectors", "dep/outlier-detector")
    assert handle.get() is None
    assert handle.version() == 0
    handle.put({"n": 0})
    assert handle.update(lambda v: {"n": v["n"] + 3}, once="p1") == {"n": 3}
    assert handle.update(lambda v: {"n": v["n"] + 3}, once="p1") == {"n": 3}
    assert handle.get() == {"n": 3}
    assert handle.version() == store.version("detectors", "dep/outlier-detector") > 0


def test_concurrent_threads_lose_no_update(store: StateStore) -> None:
    def work() -> None:
        for _ in range(50):
            store.update(NS, "k", plus_one)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get(NS, "k") == 400


def test_concurrent_duplicate_tokens_count_once(store: StateStore) -> None:
    def work() -> None:
        for i in range(40):
            store.update(NS, "k", plus_one, once=f"puid-{i}:router")

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get(NS, "k") == 40


def test_reopened_store_sees_the_data(make_store: StoreFactory) -> None:
    first = make_store()
    first.put(NS, "k", {"a": 1})
    first.update(NS, "k", lambda v: {"a": v["a"] + 1}, once="t")
    version = first.version(NS, "k")
    first.close()
    again = make_store()
    assert again.get(NS, "k") == {"a": 2}
    assert again.version(NS, "k") == version
    assert again.update(NS, "k", lambda v: {"a": 99}, once="t") == {"a": 2}
