"""core.encoding: the bounded JSON parse of request bodies."""

from __future__ import annotations

import json

import pytest

from core.encoding import MAX_JSON_DEPTH, loads_bounded


@pytest.mark.parametrize("depth", [1, 10, MAX_JSON_DEPTH])
def test_documents_within_the_limit_parse(depth: int) -> None:
    text = '{"a": ' * (depth - 1) + "[1]" + "}" * (depth - 1)
    assert loads_bounded(text) == json.loads(text)
    assert loads_bounded(text.encode()) == json.loads(text)


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 500, 100_000])
@pytest.mark.parametrize(("opening", "closing"), [("[", "]"), ('{"a":', "}")])
def test_deeper_documents_are_not_json(depth: int, opening: str, closing: str) -> None:
    with pytest.raises(json.JSONDecodeError, match="Nested deeper than 64 levels"):
        loads_bounded(opening * depth + "1" * (opening == '{"a":') + closing * depth)


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"text": "[" * 1000, "list": [[["{"]]]})
    assert loads_bounded(text) == json.loads(text)


def test_options_reach_json_loads() -> None:
    with pytest.raises(ValueError, match="NaN"):
        loads_bounded("[NaN]", parse_constant=lambda name: (_ for _ in ()).throw(ValueError(name)))


@pytest.mark.parametrize(
    "text",
    ['{"title": "a", "title": "b"}', '{"input": {"title": "a", "title": "a"}}', '[{"x": 1}, {"y": 1, "y": 2}]'],
    ids=["top level", "nested, same value", "inside a list"],
)
def test_an_object_naming_a_member_twice_is_not_json(text: str) -> None:
    """json.loads keeps the last value of a repeated name; which one counts would be a guess."""
    with pytest.raises(json.JSONDecodeError, match="Duplicate key"):
        loads_bounded(text)


def test_the_same_name_in_different_objects_is_fine() -> None:
    text = '{"a": {"title": 1}, "b": {"title": 2}, "title": 3}'
    assert loads_bounded(text) == json.loads(text)


def test_an_integer_longer_than_int_takes_is_not_json() -> None:
    with pytest.raises(json.JSONDecodeError, match="4300"):
        loads_bounded('{"n": ' + "9" * 5000 + "}")
