"""Runs INSIDE the seldon-core venv: executes SeldonClient calls described as JSON on
stdin and prints their outcomes as JSON on stdout.  Keeps the compatibility tests'
process boundary clean: nothing of seldon-core is imported by our test process.

Input: a list of {"call": "microservice" | "microservice_feedback" | "predict" |
"feedback", "client": {...SeldonClient kwargs}, "kwargs": {...}}.  Arrays are
given as nested lists under "data" / "datas"; feedback request/response as dicts,
or as {"$from": i, "key": "request" | "response"}: that part of the i-th call's
outcome (so one process can predict, then send feedback on the answer).
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from google.protobuf import json_format
from seldon_core.seldon_client import SeldonClient
from seldon_core.utils import json_to_seldon_message


def to_dict(message):
    if message is None:
        return None
    if isinstance(message, dict):
        return message
    return json_format.MessageToDict(message)


def resolve(value, results):
    if isinstance(value, dict) and "$from" in value:
        return results[value["$from"]][value.get("key", "response")]
    return value


def run(spec, results):
    client = SeldonClient(**spec.get("client", {}))
    kwargs = {key: resolve(value, results) for key, value in spec.get("kwargs", {}).items()}
    if "data" in kwargs and kwargs["data"] is not None:
        kwargs["data"] = np.array(kwargs["data"])
    if "datas" in kwargs:
        kwargs["datas"] = [np.array(d) for d in kwargs["datas"]]
    for key in ("prediction_request", "prediction_response", "prediction_truth"):
        if isinstance(kwargs.get(key), dict):
            kwargs[key] = json_to_seldon_message(kwargs[key])
    if "bin_data" in kwargs:
        kwargs["bin_data"] = kwargs["bin_data"].encode()
    result = getattr(client, spec["call"])(**kwargs)
    out = {"success": bool(result.success), "msg": str(result.msg)}
    out["request"] = to_dict(getattr(result, "request", None))
    out["response"] = to_dict(getattr(result, "response", None))
    return out


def main():
    specs = json.load(sys.stdin)
    results = []
    for spec in specs:
        try:
            results.append(run(spec, results))
        except Exception as exc:  # report, do not crash: the test asserts on it
            results.append({"success": False, "msg": f"{type(exc).__name__}: {exc}", "error": True})
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
