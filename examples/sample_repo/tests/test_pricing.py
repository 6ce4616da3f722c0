from decimal import Decimal

import pytest

from stockroom import InvalidQuantityError, UnknownRegionError, apply_discount, bulk_discount_rate, line_total
from stockroom import round_money, tax_for_region
from stockroom.pricing import format_money, tax_rate_for_region


def test_round_money_rounds_half_up_to_cents():
    cases = {"2.345": "2.35", "2.344": "2.34", "-2.345": "-2.35", "10": "10.00"}
    assert {amount: str(round_money(Decimal(amount))) for amount in cases} == cases


def test_apply_discount():
    assert apply_discount(Decimal("19.99"), Decimal("0.10")) == Decimal("17.99")
    assert apply_discount(Decimal("50"), Decimal("0")) == Decimal("50.00")
    assert apply_discount(Decimal("50"), Decimal("1")) == Decimal("0.00")
    for bad_rate in ("-0.01", "1.5"):
        with pytest.raises(ValueError, match="between 0 and 1"):
            apply_discount(Decimal("10"), Decimal(bad_rate))


def test_bulk_discount_tiers():
    rates = {quantity: bulk_discount_rate(quantity) for quantity in (1, 19, 20, 99, 100, 500)}
    assert rates == {1: 0, 19: 0, 20: Decimal("0.05"), 99: Decimal("0.05"), 100: Decimal("0.10"), 500: Decimal("0.10")}


def test_tax_for_region_uses_regional_rate_and_rounds():
    assert tax_for_region(Decimal("100.00"), "UK") == Decimal("20.00")
    assert tax_for_region(Decimal("10.10"), "us-ca") == Decimal("0.73")  # 0.73225
    assert tax_for_region(Decimal("99.99"), "US-OR") == Decimal("0.00")
    assert tax_rate_for_region("de") == Decimal("0.19")


def test_tax_for_unknown_region_raises():
    with pytest.raises(UnknownRegionError, match="Atlantis"):
        tax_for_region(Decimal("1"), "Atlantis")


def test_line_total_applies_discount_after_multiplying():
    assert line_total(3, Decimal("14.99")) == Decimal("44.97")
    assert line_total(3, Decimal("14.99"), Decimal("0.05")) == Decimal("42.72")  # 42.7215
    with pytest.raises(InvalidQuantityError):
        line_total(0, Decimal("1.00"))


def test_format_money():
    assert format_money(Decimal("1234.5")) == "GBP 1,234.50"
    assert format_money(Decimal("0.005"), "EUR") == "EUR 0.01"
