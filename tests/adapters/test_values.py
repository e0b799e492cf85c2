"""Driver values made plain JSON (adapters/values.py)."""
from __future__ import annotations

import json
from decimal import Decimal

from adapters.values import MAX_DEPTH, TOO_DEEP, jsonable
from customer_lookup.merge import _decode_json


def nested(depth: int):
    value: object = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def depth_of(value) -> int:
    depth = 0
    while isinstance(value, list):
        value, depth = value[0], depth + 1
    return depth


def test_money_and_odd_floats():
    assert jsonable({"balance": Decimal("125.40"), "x": float("nan")}) == {"balance": "125.40", "x": None}


def test_nesting_is_capped_so_a_card_always_encodes():
    capped = jsonable(nested(900))  # loads fine, but would fail when the pop is encoded
    assert depth_of(capped) == MAX_DEPTH
    inner = capped
    for _ in range(MAX_DEPTH):
        inner = inner[0]
    assert inner == TOO_DEEP
    json.dumps(capped)
    assert jsonable(nested(5)) == nested(5)  # ordinary data untouched


def test_a_json_column_nested_near_the_recursion_limit_is_capped_not_lost():
    record = _decode_json({"recent_orders": json.dumps(nested(950)), "name": "Ana"})
    assert record["name"] == "Ana" and depth_of(record["recent_orders"]) == MAX_DEPTH
    json.dumps(record)
