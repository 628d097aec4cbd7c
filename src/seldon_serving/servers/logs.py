"""Log lines that say which worker wrote them, and failures logged once with their cause.

With several worker processes every worker logs for itself; each line carries `w<N>` (the
worker's index), or nothing in a single-process server.  A request that failed because user
code raised is logged with that exception's type and traceback: the operator sees where it
came from, the client only ever gets the one-sentence info.
"""

from __future__ import annotations

import logging

from seldon_serving.protocol.errors import SeldonError

FORMAT = "%(asctime)s %(levelname)s %(worker)s%(name)s: %(message)s"

_index: int | None = None


class _WorkerField(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.worker = "" if _index is None else f"[w{_index}] "
        return True


def configure(level: str) -> None:
    """Log to stderr at `level` with the worker field (for the server commands)."""
    logging.basicConfig(level=level.upper(), format=FORMAT)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _WorkerField) for f in handler.filters):
            handler.addFilter(_WorkerField())


def set_worker(index: int | None) -> None:
    """This process is worker `index` (None: the only process)."""
    global _index
    _index = index


def worker_index() -> int | None:
    """This process's worker index, None in a single-process server."""
    return _index


def user_cause(error: BaseException) -> BaseException | None:
    """The user's own exception behind a SeldonError (followed through `__cause__`), if any."""
    cause = error.__cause__
    while isinstance(cause, SeldonError):
        cause = cause.__cause__
    return cause


def log_failure(log: logging.Logger, where: str, error: SeldonError) -> None:
    """A server-side error (5xx) in one line, with the user exception's traceback behind it."""
    if error.http_status < 500:
        return
    cause = user_cause(error)
    if cause is None:
        log.error("%s: %s", where, error.info)
    else:
        log.error("%s: %s", where, error.info, exc_info=(type(cause), cause, cause.__traceback__))
