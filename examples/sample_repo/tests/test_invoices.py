from datetime import date
from decimal import Decimal

import pytest

from stockroom import (
    InvoiceNumberSequence,
    OutOfStockError,
    UnknownProductError,
    add_line,
    cancel_invoice,
    create_invoice,
    finalize_invoice,
    invoice_subtotal,
    invoice_tax,
    invoice_total,
    render_invoice,
)


def test_invoice_numbers_are_consecutive_and_padded():
    numbers = InvoiceNumberSequence(prefix="SR", start=98, width=3)
    assert [numbers.next_number() for _ in range(3)] == ["SR-098", "SR-099", "SR-100"]
    with pytest.raises(ValueError):
        InvoiceNumberSequence(start=0)


def test_create_invoice_takes_next_number(alice, bob, numbers, may_day):
    first = create_invoice(alice, numbers, issued_on=may_day)
    second = create_invoice(bob, numbers, issued_on=may_day)
    assert (first.number, second.number) == ("INV-00001", "INV-00002")
    assert first.lines == [] and first.customer is alice and first.issued_on == date(2024, 5, 1)


def test_add_line_reserves_stock_and_picks_best_discount(items, alice, numbers, may_day):
    invoice = create_invoice(alice, numbers, issued_on=may_day)
    small = add_line(invoice, items, "HW-001", 3)  # silver loyalty 5% beats no bulk discount
    large = add_line(invoice, items, "OF-001", 100)  # bulk 10% beats loyalty 5%
    assert small.discount_rate == Decimal("0.05")
    assert large.discount_rate == Decimal("0.10")
    assert small.description == "Claw hammer"
    assert items["HW-001"].reserved == 3 and items["OF-001"].reserved == 100
    assert invoice.item_count == 103


def test_invoice_totals_for_uk_customer(items, alice, numbers, may_day):
    invoice = create_invoice(alice, numbers, issued_on=may_day)
    add_line(invoice, items, "HW-001", 3)  # 44.97 - 5% = 42.72
    add_line(invoice, items, "OF-001", 100)  # 480.00 - 10% = 432.00
    assert invoice_subtotal(invoice) == Decimal("474.72")
    assert invoice_tax(invoice) == Decimal("94.94")
    assert invoice_total(invoice) == Decimal("569.66")


def test_invoice_totals_for_californian_customer(items, bob, numbers, may_day):
    invoice = create_invoice(bob, numbers, issued_on=may_day)
    add_line(invoice, items, "KT-001", 2)  # 69.80
    add_line(invoice, items, "HW-003", 20)  # 145.00 - 5% = 137.75
    assert invoice_subtotal(invoice) == Decimal("207.55")
    assert invoice_tax(invoice) == Decimal("15.05")
    assert invoice_total(invoice) == Decimal("222.60")


def test_add_line_failures_leave_invoice_and_stock_untouched(items, bob, numbers, may_day):
    invoice = create_invoice(bob, numbers, issued_on=may_day)
    with pytest.raises(OutOfStockError):
        add_line(invoice, items, "HW-004", 4)
    with pytest.raises(UnknownProductError):
        add_line(invoice, items, "ZZ-999", 1)
    assert invoice.lines == []
    assert items["HW-004"].reserved == 0


def test_finalize_ships_stock_and_updates_customer_spend(items, alice, numbers, may_day):
    invoice = create_invoice(alice, numbers, issued_on=may_day)
    add_line(invoice, items, "KT-003", 5)
    updated = finalize_invoice(invoice, items)
    assert invoice.finalized
    assert (items["KT-003"].quantity, items["KT-003"].reserved) == (20, 0)
    assert updated.lifetime_spend == Decimal("1200") + invoice_subtotal(invoice)
    with pytest.raises(ValueError, match="finalized"):
        add_line(invoice, items, "KT-003", 1)
    with pytest.raises(ValueError, match="already finalized"):
        finalize_invoice(invoice, items)


def test_finalize_rejects_empty_invoice(items, alice, numbers, may_day):
    with pytest.raises(ValueError, match="no lines"):
        finalize_invoice(create_invoice(alice, numbers, issued_on=may_day), items)


def test_cancel_invoice_releases_reservations(items, bob, numbers, may_day):
    invoice = create_invoice(bob, numbers, issued_on=may_day)
    add_line(invoice, items, "KT-002", 3)
    assert items["KT-002"].available == 0
    cancel_invoice(invoice, items)
    assert invoice.lines == []
    assert items["KT-002"].available == 3 and items["KT-002"].reserved == 1


def test_render_invoice_text(items, alice, numbers, may_day):
    invoice = create_invoice(alice, numbers, issued_on=may_day)
    add_line(invoice, items, "HW-001", 3)
    text = render_invoice(invoice)
    lines = text.splitlines()
    assert lines[0] == "Invoice INV-00001    issued 2024-05-01"
    assert "Alice Martin (C001), region UK, silver tier" in lines[1]
    row = next(line for line in lines if line.startswith("HW-001"))
    assert "Claw hammer" in row and "-5%" in row and row.rstrip().endswith("42.72")
    assert lines[-3].endswith("GBP 42.72")
    assert lines[-2].endswith("GBP 8.54")
    assert lines[-1].startswith("Total") and lines[-1].endswith("GBP 51.26")
