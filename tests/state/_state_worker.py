"""A separate OS process for the multi-process state tests.

Usage: python _state_worker.py STORE_URL COMMAND ARGS...
  incr KEY N THREADS       after "go" on stdin, N updates (+1) spread over THREADS threads
  once KEY TOKENS THREADS  after "go", every thread applies tokens 0..TOKENS-1 (+1 each)
  put KEY JSON             one put, then exit
  count-forever KEY        update (+1) in a loop, printing each acknowledged value
Prints "ready" once the store is open (so the parent can start both workers
at the same moment) and "done" at the end.
"""

from __future__ import annotations

import random
import sys
import threading

import orjson

from seldon_serving.state import open_store

NS = "workers"


def _plus_one(value: int | None) -> int:
    return (value or 0) + 1


def _in_threads(n_threads: int, target: object) -> None:
    threads = [threading.Thread(target=target, args=(i,)) for i in range(n_threads)]  # type: ignore[arg-type]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def main(argv: list[str]) -> None:
    url, command, key, *rest = argv
    store = open_store(url)
    print("ready", flush=True)
    if command == "incr":
        n, n_threads = int(rest[0]), int(rest[1])
        sys.stdin.readline()  # "go"

        def work(i: int) -> None:
            share = n // n_threads + (1 if i < n % n_threads else 0)
            for _ in range(share):
                store.update(NS, key, _plus_one)

        _in_threads(n_threads, work)
    elif command == "once":
        n_tokens, n_threads = int(rest[0]), int(rest[1])
        sys.stdin.readline()

        def apply_all(_: int) -> None:
            tokens = [f"puid-{t}:node" for t in range(n_tokens)]
            random.shuffle(tokens)
            for token in tokens:
                store.update(NS, key, _plus_one, once=token)

        _in_threads(n_threads, apply_all)
    elif command == "put":
        store.put(NS, key, orjson.loads(rest[0]))
    elif command == "count-forever":
        while True:
            print(store.update(NS, key, _plus_one), flush=True)
    else:
        raise SystemExit(f"unknown command {command!r}")
    store.close()
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
