"""Regenerate the committed protobuf/gRPC code from protocol/proto/*.proto.

Run: python scripts/gen_protos.py   (needs grpcio-tools; `pip install -e .[dev]`)
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "src" / "seldon_serving" / "protocol" / "proto"
OUT_DIR = ROOT / "src" / "seldon_serving" / "protocol" / "_pb"
PACKAGE = "seldon_serving.protocol._pb"


def main() -> int:
    if OUT_DIR.exists():
        shutil.rmtree(OUT_DIR)
    OUT_DIR.mkdir(parents=True)
    protos = sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.rglob("*.proto"))
    well_known = Path(protoc.__file__).parent / "_proto"
    includes = [f"-I{PROTO_DIR}", f"-I{well_known}"]
    # gRPC stubs only for protos that declare services: the grpc plugin would otherwise
    # emit an empty *_pb2_grpc.py for every TensorFlow message file.
    with_services = [p for p in protos if re.search(r"^service\s", (PROTO_DIR / p).read_text(), re.M)]
    runs = [
        ["protoc", *includes, f"--python_out={OUT_DIR}", f"--pyi_out={OUT_DIR}", *protos],
        ["protoc", *includes, f"--grpc_python_out={OUT_DIR}", *with_services],
    ]
    for args in runs:
        if protoc.main(args) != 0:
            print("protoc failed", file=sys.stderr)
            return 1
    # protoc writes absolute imports rooted at the proto dir; make them package-relative.
    for path in OUT_DIR.rglob("*.py*"):
        text = path.read_text()
        text = re.sub(r"^from tensorflow\.", f"from {PACKAGE}.tensorflow.", text, flags=re.M)
        text = re.sub(r"^import prediction_pb2", f"from {PACKAGE} import prediction_pb2", text, flags=re.M)
        text = re.sub(
            r"^import open_inference_v2_pb2", f"from {PACKAGE} import open_inference_v2_pb2", text, flags=re.M
        )
        path.write_text(text)
    for directory in [OUT_DIR, *(p for p in OUT_DIR.rglob("*") if p.is_dir())]:
        (directory / "__init__.py").touch()
    print(f"generated {len(protos)} protos into {OUT_DIR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
