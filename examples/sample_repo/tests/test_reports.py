from decimal import Decimal

import pytest

from stockroom import (
    add_line,
    create_invoice,
    finalize_invoice,
    invoice_total,
    low_stock_report,
    revenue_by_customer,
    stock_value_report,
    top_sellers,
)
from stockroom.reports import total_stock_value, units_sold_by_sku


def test_stock_value_report_by_category(items):
    report = stock_value_report(items)
    assert list(report) == ["hardware", "kitchen", "office"]
    # 40*14.99 + 6*89.50 + 120*7.25 + 3*19.00
    assert report["hardware"] == Decimal("2063.60")
    # 12*34.90 + 4*42.00 + 25*16.75 + 9*22.30
    assert report["kitchen"] == Decimal("1206.25")
    # 250*4.80 + 8*3.20 + 15*11.40 + 0*2.65
    assert report["office"] == Decimal("1396.60")
    assert total_stock_value(items) == Decimal("4666.45")


@pytest.fixture
def sales(items, alice, bob, numbers, may_day):
    """Three invoices: two finalized, one still open."""
    first = create_invoice(alice, numbers, issued_on=may_day)
    add_line(first, items, "OF-001", 30)
    add_line(first, items, "HW-001", 2)
    finalize_invoice(first, items)
    second = create_invoice(bob, numbers, issued_on=may_day)
    add_line(second, items, "HW-001", 5)
    add_line(second, items, "KT-003", 5)
    finalize_invoice(second, items)
    open_invoice = create_invoice(bob, numbers, issued_on=may_day)
    add_line(open_invoice, items, "OF-002", 8)
    return [first, second, open_invoice]


def test_top_sellers_counts_finalized_invoices_only(sales):
    assert units_sold_by_sku(sales)["OF-002"] == 0
    assert top_sellers(sales) == [("OF-001", 30), ("HW-001", 7), ("KT-003", 5)]
    assert top_sellers(sales, limit=1) == [("OF-001", 30)]


def test_revenue_by_customer_includes_tax(sales):
    first, second, _open = sales
    revenue = revenue_by_customer(sales)
    assert revenue == {"C001": invoice_total(first), "C002": invoice_total(second)}
    # 30*4.80 - 5% bulk = 136.80, 2*14.99 - 5% loyalty = 28.48; +20% UK tax
    assert revenue["C001"] == Decimal("198.34")


def test_low_stock_report_text(items):
    report = low_stock_report(items, threshold=3)
    lines = report.splitlines()
    assert lines[0] == "Items at or below 3 available units:"
    assert [line.split()[0] for line in lines[1:]] == ["OF-004", "HW-004", "KT-002"]
    assert lines[1].endswith("0 available")
    assert low_stock_report(items, threshold=-1) == "No items at or below -1 available units."
