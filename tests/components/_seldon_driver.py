"""Runs inside seldon-core's own venv: answers each case with seldon_core.seldon_methods.

stdin: {"source": <python defining the user classes>, "cases": [{"cls", "method", "request"}]}
stdout: a JSON list with one answer (or {"error": ...}) per case.
"""

import json
import sys

# None in sys.modules makes `import tensorflow` fail fast: no case needs tftensor, and importing
# TensorFlow would take most of the test's time.
sys.modules["tensorflow"] = None  # type: ignore[assignment]

from seldon_core import seldon_methods  # noqa: E402
from seldon_core.metrics import SeldonMetrics  # noqa: E402
from seldon_core.utils import json_to_feedback, seldon_message_to_json  # noqa: E402


def main():
    job = json.load(sys.stdin)
    namespace = {}
    exec(job["source"], namespace)
    metrics = SeldonMetrics()
    answers = []
    for case in job["cases"]:
        user = namespace[case["cls"]]()
        method, request = case["method"], case["request"]
        try:
            if method == "send_feedback":
                answer = seldon_message_to_json(
                    seldon_methods.send_feedback(user, json_to_feedback(request), "unit", metrics)
                )
            elif method == "health_status":
                answer = seldon_methods.health_status(user, metrics)
            else:
                answer = getattr(seldon_methods, method)(user, request, metrics)
            answers.append(json.loads(json.dumps(answer, default=list)))
        except Exception as exc:
            answers.append({"error": f"{type(exc).__name__}: {exc}"})
    json.dump(answers, sys.stdout)


main()
