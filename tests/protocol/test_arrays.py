"""TensorFlow dtype table and array <-> tensor field rules."""

from __future__ import annotations

import numpy as np
import pytest

from seldon_serving.protocol import arrays
from seldon_serving.protocol.errors import BadRequest


@pytest.mark.parametrize(
    ("name", "dtype", "field"),
    [
        ("DT_FLOAT", np.float32, "float_val"),
        ("DT_DOUBLE", np.float64, "double_val"),
        ("DT_INT32", np.int32, "int_val"),
        ("DT_UINT8", np.uint8, "int_val"),
        ("DT_INT16", np.int16, "int_val"),
        ("DT_INT8", np.int8, "int_val"),
        ("DT_UINT16", np.uint16, "int_val"),
        ("DT_INT64", np.int64, "int64_val"),
        ("DT_UINT32", np.uint32, "uint32_val"),
        ("DT_UINT64", np.uint64, "uint64_val"),
        ("DT_BOOL", np.bool_, "bool_val"),
        ("DT_HALF", np.float16, "half_val"),
        ("DT_STRING", object, "string_val"),
        ("DT_COMPLEX64", np.complex64, "scomplex_val"),
        ("DT_COMPLEX128", np.complex128, "dcomplex_val"),
    ],
)
def test_dtype_table_matches_tensorflow(name: str, dtype: type, field: str) -> None:
    tf = arrays.tf_type(name, "dtype")
    assert tf.dtype == np.dtype(dtype)
    assert tf.field == field
    assert arrays.tf_type(tf.code, "dtype") is tf
    if dtype is not object:
        assert arrays.tf_type_for_array(np.zeros(1, dtype=dtype)).name == name


def test_string_arrays_are_dt_string() -> None:
    for arr in (np.array(["a"]), np.array([b"a"]), np.array(["a", 1], dtype=object)):
        assert arrays.tf_type_for_array(arr).name == "DT_STRING"


def test_fields_round_trip_through_tensor_to_array() -> None:
    arr = np.arange(6, dtype=">i4").reshape(2, 3)  # big-endian input is written little-endian
    fields = arrays.array_to_tensor_fields(arr)
    assert fields.dtype == "DT_INT32" and fields.shape == (2, 3)
    assert fields.content == np.arange(6, dtype="<i4").tobytes()
    back = arrays.tensor_to_array(
        arrays.TF_TYPES["DT_INT32"], fields.shape, fields.content, [], "t", "intVal"
    )
    np.testing.assert_array_equal(back, arr)


def test_no_values_means_zeros_like_tensorflow() -> None:
    out = arrays.tensor_to_array(arrays.TF_TYPES["DT_INT64"], [2, 2], b"", [], "t", "int64Val")
    np.testing.assert_array_equal(out, np.zeros((2, 2), dtype=np.int64))


def test_too_many_values_is_refused() -> None:
    with pytest.raises(BadRequest, match=r"^t\.floatVal has 3 values but tensorShape \[2\] needs 2$"):
        arrays.tensor_to_array(arrays.TF_TYPES["DT_FLOAT"], [2], b"", [1, 2, 3], "t", "floatVal")


def test_string_tensor_cannot_use_tensor_content() -> None:
    with pytest.raises(BadRequest, match="cannot carry DT_STRING"):
        arrays.tensor_to_array(arrays.TF_TYPES["DT_STRING"], [1], b"x", [], "t", "stringVal")


def test_reshape_values_checks_the_count() -> None:
    flat = np.arange(6.0)
    assert arrays.reshape_values(flat, [2, 3], "data.tensor").shape == (2, 3)
    with pytest.raises(BadRequest, match=r"^data\.tensor\.shape \[4\] does not match 6 values$"):
        arrays.reshape_values(flat, [4], "data.tensor")


def test_array_to_tensor_refuses_strings_and_accepts_object_numbers() -> None:
    with pytest.raises(ValueError):
        arrays.array_to_tensor(np.array(["a"]))
    shape, values = arrays.array_to_tensor(np.array([[1, 2.5]], dtype=object))
    assert shape == [1, 2] and values.tolist() == [1.0, 2.5]


@pytest.mark.parametrize("ragged", [[[1], [2, 3]], [[1], 2], [[[1]], [[1, 2]]], [[], [1]]])
def test_check_ndarray_finds_ragged_rows(ragged: list) -> None:
    with pytest.raises(BadRequest, match="is ragged"):
        arrays.check_ndarray(ragged, "data.ndarray")


@pytest.mark.parametrize("fine", [[], [1, "a", None], [[1, 2], [3, 4]], [[[1], [2]]], [[], []]])
def test_check_ndarray_accepts_rectangles(fine: list) -> None:
    arrays.check_ndarray(fine, "data.ndarray")
