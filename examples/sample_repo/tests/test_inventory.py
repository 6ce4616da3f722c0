from decimal import Decimal

import pytest

from stockroom import (
    InvalidQuantityError,
    OutOfStockError,
    UnknownProductError,
    load_inventory,
    low_stock,
    release_reservation,
    reserve,
    restock,
    save_inventory,
    ship_reserved,
)


def test_load_inventory_reads_every_row_with_decimal_prices(items):
    assert len(items) == 12
    drill = items["HW-002"]
    assert drill.product.name == "Cordless drill"
    assert drill.product.category == "hardware"
    assert drill.product.unit_price == Decimal("89.50")
    assert (drill.quantity, drill.reserved, drill.available) == (6, 2, 4)


def test_save_then_load_round_trips(items, tmp_path):
    restock(items, "OF-004", 30)
    target = tmp_path / "inventory.csv"
    save_inventory(items, target)
    reloaded = load_inventory(target)
    assert reloaded == items
    assert target.read_text(encoding="utf-8").splitlines()[0] == "sku,name,category,unit_price,quantity,reserved"


def test_load_inventory_rejects_duplicate_skus(tmp_path):
    path = tmp_path / "dupes.csv"
    path.write_text(
        "sku,name,category,unit_price,quantity,reserved\n"
        "A-1,Thing,misc,1.00,1,0\n"
        "A-1,Other thing,misc,2.00,1,0\n",
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="duplicate SKU"):
        load_inventory(path)


def test_load_inventory_rejects_bad_price(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("sku,name,category,unit_price,quantity,reserved\nA-1,Thing,misc,cheap,1,0\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad unit_price"):
        load_inventory(path)


def test_restock_adds_units(items):
    item = restock(items, "HW-004", 7)
    assert item.quantity == 10
    assert items["HW-004"].available == 10


def test_restock_unknown_sku_raises(items):
    with pytest.raises(UnknownProductError) as excinfo:
        restock(items, "NOPE-1", 1)
    assert excinfo.value.sku == "NOPE-1"
    assert "NOPE-1" in str(excinfo.value)


def test_non_positive_quantities_are_rejected(items):
    for operation in (reserve, restock, release_reservation, ship_reserved):
        for quantity in (0, -3):
            with pytest.raises(InvalidQuantityError):
                operation(items, "HW-001", quantity)
    assert (items["HW-001"].quantity, items["HW-001"].reserved) == (40, 0)


def test_reserve_holds_units_until_available_runs_out(items):
    reserve(items, "KT-002", 2)
    assert items["KT-002"].available == 1
    with pytest.raises(OutOfStockError) as excinfo:
        reserve(items, "KT-002", 2)
    assert (excinfo.value.requested, excinfo.value.available) == (2, 1)
    assert items["KT-002"].reserved == 3  # the failed reservation changed nothing


def test_release_and_ship_reserved(items):
    reserve(items, "OF-003", 4)  # 15 on hand, 5 + 4 reserved
    release_reservation(items, "OF-003", 1)
    item = ship_reserved(items, "OF-003", 8)
    assert (item.quantity, item.reserved, item.available) == (7, 0, 7)
    with pytest.raises(InvalidQuantityError, match="only 0 reserved"):
        release_reservation(items, "OF-003", 1)


def test_low_stock_is_sorted_scarcest_first(items):
    found = [item.sku for item in low_stock(items, threshold=4)]
    assert found == ["OF-004", "HW-004", "KT-002", "HW-002"]
    assert low_stock(items, threshold=-1) == []
