"""Typing of PREDICTIVE_UNIT_PARAMETERS / --parameters before they reach __init__(**parameters)."""

from __future__ import annotations

import json

import pytest

from seldon_serving.components.parameters import parse_parameters
from seldon_serving.protocol.errors import BadParameter


def test_each_declared_type_reaches_the_class_as_python_value() -> None:
    params = [
        {"name": "n_branches", "value": "3", "type": "INT"},
        {"name": "epsilon", "value": "0.2", "type": "FLOAT"},
        {"name": "alpha", "value": "1e-3", "type": "DOUBLE"},
        {"name": "model_uri", "value": "gs://bucket/model", "type": "STRING"},
        {"name": "verbose", "value": "true", "type": "BOOL"},
    ]
    parsed = parse_parameters(params)
    assert parsed == {
        "n_branches": 3,
        "epsilon": 0.2,
        "alpha": 0.001,
        "model_uri": "gs://bucket/model",
        "verbose": True,
    }
    assert type(parsed["n_branches"]) is int and type(parsed["epsilon"]) is float


def test_json_text_as_given_on_the_command_line_or_in_the_env() -> None:
    text = json.dumps([{"name": "epsilon", "value": "0.5", "type": "FLOAT"}])
    assert parse_parameters(text) == {"epsilon": 0.5}
    assert parse_parameters(None) == {}
    assert parse_parameters("") == {}
    assert parse_parameters("[]") == {}


def test_missing_type_means_string() -> None:
    assert parse_parameters([{"name": "greeting", "value": "hello"}]) == {"greeting": "hello"}


@pytest.mark.parametrize("word", ["true", "True", "1", "yes", "on", "Y", "t"])
def test_true_words(word: str) -> None:
    assert parse_parameters([{"name": "b", "value": word, "type": "BOOL"}]) == {"b": True}


@pytest.mark.parametrize("word", ["false", "False", "0", "no", "off", "N", "f"])
def test_false_words_are_false_unlike_seldon_0_2(word: str) -> None:
    # Seldon 0.2.x used bool("false") == True (issue #439); strtobool semantics now.
    assert parse_parameters([{"name": "b", "value": word, "type": "BOOL"}]) == {"b": False}


def test_json_typed_values_from_hand_written_manifests() -> None:
    params = [
        {"name": "i", "value": 5, "type": "INT"},
        {"name": "f", "value": 2, "type": "FLOAT"},
        {"name": "b", "value": False, "type": "BOOL"},
        {"name": "s", "value": 7, "type": "STRING"},
    ]
    assert parse_parameters(params) == {"i": 5, "f": 2.0, "b": False, "s": "7"}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"name": "epsilon", "value": "abc", "type": "FLOAT"},
            "parameter 'epsilon' value 'abc' is not a FLOAT",
        ),
        ({"name": "n", "value": "1.5", "type": "INT"}, "parameter 'n' value '1.5' is not a INT"),
        (
            {"name": "verbose", "value": "maybe", "type": "BOOL"},
            "parameter 'verbose' value 'maybe' is not a BOOL",
        ),
        ({"name": "n", "value": True, "type": "INT"}, "parameter 'n' value 'True' is not a INT"),
    ],
)
def test_bad_value_names_parameter_value_and_type(entry: dict[str, object], message: str) -> None:
    with pytest.raises(BadParameter) as caught:
        parse_parameters([entry])
    assert str(caught.value) == message
    assert caught.value.status()["reason"] == "MICROSERVICE_BAD_PARAMETER"
    assert caught.value.http_status == 400


def test_unknown_type_lists_the_valid_ones() -> None:
    with pytest.raises(BadParameter, match=r"unknown type 'LONG'.*INT, FLOAT, DOUBLE, STRING, BOOL"):
        parse_parameters([{"name": "n", "value": "1", "type": "LONG"}])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"name": "x"}', "must be a JSON list"),
        ([{"value": "1"}], "has no name"),
        ([{"name": "x", "type": "INT"}], "parameter 'x' has no value"),
        (["x"], "must be an object"),
    ],
)
def test_malformed_lists_are_rejected_clearly(params: object, message: str) -> None:
    with pytest.raises(BadParameter, match=message):
        parse_parameters(params)  # type: ignore[arg-type]
