"""The drivers themselves: each error table covers the error table of docs/api/errors.md exactly once per row."""

from __future__ import annotations

from tests.contract.drivers import ERRORS, Connect


def test_the_error_table_maps_onto_every_row_of_the_error_table(connect: Connect) -> None:
    table = connect.driver_class.ERROR_TABLE

    assert set(table.values()) == ERRORS
