"""MLFLOW_SERVER: an MLflow model directory (`MLmodel`), served through its `python_function`
(pyfunc) flavour, as Seldon 1.x's mlflowserver serves it.

Parameters (Seldon's): `model_uri`, and `xtype`: `ndarray` (the default: the rows are given to
the model as an array) or `dataframe` (as a pandas DataFrame whose columns are the request's
names).  Where Seldon's server would fail, an `ndarray` request to a model whose signature
names its input columns is given as a DataFrame with those columns (MLflow refuses an array
there).  A DataFrame answer names the response's columns (`class_names`).

`/metadata` is `metadata.yaml` of the model directory if there is one (Seldon's servers), else
the model's signature: one input (output) per column or tensor, with its name, datatype and
shape, in the v2 form MLServer uses.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ._base import ModelServerBase, ModelServerError, ServerParameterError, reason

__all__ = ["MLFlowServer"]

log = logging.getLogger("seldon_serving.model_servers")

XTYPES = ("ndarray", "dataframe")

# MLflow's column types as v2 datatypes (MLServer's mapping).
_COLUMN_TYPES = {
    "boolean": "BOOL",
    "integer": "INT32",
    "long": "INT64",
    "float": "FP32",
    "double": "FP64",
    "string": "BYTES",
    "binary": "BYTES",
    "datetime": "BYTES",
}


def _tensor_datatype(dtype: Any) -> str:
    """A numpy dtype as a v2 datatype."""
    kind = np.dtype(dtype)
    if kind.kind == "b":
        return "BOOL"
    if kind.kind in "iuf":
        prefix = {"i": "INT", "u": "UINT", "f": "FP"}[kind.kind]
        return f"{prefix}{kind.itemsize * 8}"
    return "BYTES"


def _schema_tensors(schema: Any, prefix: str) -> list[dict[str, Any]]:
    """An MLflow Schema as v2 metadata tensors: {name, datatype, shape} each."""
    tensors = []
    for index, spec in enumerate(schema.inputs):
        name = spec.name or f"{prefix}-{index}"
        shape = getattr(spec, "shape", None)
        if shape is not None:  # a TensorSpec: its numpy type and shape
            tensors.append({"name": name, "datatype": _tensor_datatype(spec.type), "shape": list(shape)})
        else:  # a ColSpec: one column of the frame
            kind = getattr(spec.type, "name", "")
            tensors.append({"name": name, "datatype": _COLUMN_TYPES.get(kind, "BYTES"), "shape": [-1, 1]})
    return tensors


class MLFlowServer(ModelServerBase):
    """Serves an MLflow model through its pyfunc flavour."""

    implementation: ClassVar[str] = "MLFLOW_SERVER"
    framework: ClassVar[str] = "mlflow.pyfunc"
    extra: ClassVar[str] = "mlflow"
    model_files: ClassVar[tuple[str, ...]] = ("MLmodel",)

    def __init__(self, model_uri: str | None = None, xtype: str = "ndarray") -> None:
        super().__init__(model_uri)
        if xtype not in XTYPES:
            raise ServerParameterError(
                f"{self.implementation} parameter xtype {xtype!r} is not one of {', '.join(XTYPES)}"
            )
        self.xtype = xtype
        self.class_names: list[str] | None = None
        self._model: Any = None
        self._pd: Any = None
        self._signature: Any = None
        self._columns: list[str] | None = None  # the signature's input column names, if it names them
        self.input_errors = (*self.input_errors, KeyError)

    def _load(self, path: Path) -> None:
        pyfunc = self.import_framework()
        self._pd = self.import_framework("pandas")
        exceptions = self.import_framework("mlflow.exceptions")
        if path.is_file():
            if path.name != "MLmodel":
                raise ModelServerError(
                    f"{path} is a file: {self.implementation} loads an MLflow model directory (one "
                    "holding an MLmodel file)"
                )
            path = path.parent
        file = self.model_file(path)
        try:
            model = pyfunc.load_model(str(path))
        except Exception as exc:  # MlflowException, or whatever the model's own code raises
            raise self.unreadable(file, "readable MLflow model with a python_function flavour", exc) from None
        self._model = model
        self._signature = getattr(model.metadata, "signature", None)
        inputs = getattr(self._signature, "inputs", None)
        if inputs is not None and not inputs.is_tensor_spec() and inputs.has_input_names():
            self._columns = list(inputs.input_names())
        self.input_errors = (*self.input_errors, exceptions.MlflowException)

    def _model_input(self, X: Any, names: list[str] | None) -> Any:
        pd = self._pd
        if self.xtype == "dataframe":  # Seldon's: the request's names are the columns
            return pd.DataFrame(data=X, columns=names or None)
        columns = self._columns
        if columns and isinstance(X, np.ndarray) and X.ndim == 2 and X.shape[1] == len(columns):
            # The signature wants named columns: the request's, when they are those, else in signature order.
            chosen = names if names and sorted(names) == sorted(columns) else columns
            return pd.DataFrame(data=X, columns=chosen)
        return X

    def _answer(self, X: Any, features_names: list[str] | None) -> Any:
        """The pyfunc's `predict`."""
        return self._model.predict(self._model_input(X, features_names))

    def _finish(self, result: Any) -> Any:
        """A DataFrame answer as its values, its columns as class names; a Series as its values."""
        pd = self._pd
        if isinstance(result, pd.DataFrame):
            self.class_names = [str(c) for c in result.columns]
            return result.to_numpy()
        if isinstance(result, pd.Series):
            return result.to_numpy()
        return result

    def init_metadata(self) -> dict[str, Any]:
        """metadata.yaml if the model directory has one, else the model's signature."""
        document = self.metadata_file()
        if document is not None:
            return document
        if self._signature is None:
            return {}
        metadata: dict[str, Any] = {}
        try:
            if self._signature.inputs is not None:
                metadata["inputs"] = _schema_tensors(self._signature.inputs, "input")
            if self._signature.outputs is not None:
                metadata["outputs"] = _schema_tensors(self._signature.outputs, "output")
        except Exception as exc:  # a signature type this mapping does not know: no metadata, not an error
            log.warning("the signature of %s is not described in /metadata: %s", self.model_path, reason(exc))
            return {}
        return metadata
