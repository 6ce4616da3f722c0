"""Reports over stock and invoices."""

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from decimal import Decimal

from stockroom.inventory import low_stock
from stockroom.invoices import invoice_total
from stockroom.models import Invoice, StockItem
from stockroom.pricing import round_money


def stock_value_report(items: Mapping[str, StockItem]) -> dict[str, Decimal]:
    """Value of stock on hand per product category, categories in alphabetical order."""
    totals: defaultdict[str, Decimal] = defaultdict(lambda: Decimal("0"))
    for item in items.values():
        totals[item.product.category] += item.stock_value
    return {category: round_money(totals[category]) for category in sorted(totals)}


def total_stock_value(items: Mapping[str, StockItem]) -> Decimal:
    """Value of all stock on hand across every category."""
    return sum(stock_value_report(items).values(), Decimal("0.00"))


def units_sold_by_sku(invoices: Iterable[Invoice]) -> Counter[str]:
    """Count the units sold per SKU across finalized invoices."""
    sold: Counter[str] = Counter()
    for invoice in invoices:
        if invoice.finalized:
            for line in invoice.lines:
                sold[line.sku] += line.quantity
    return sold


def top_sellers(invoices: Iterable[Invoice], limit: int = 3) -> list[tuple[str, int]]:
    """The ``limit`` best-selling SKUs by units sold, ties broken by SKU."""
    sold = units_sold_by_sku(invoices)
    ranked = sorted(sold.items(), key=lambda pair: (-pair[1], pair[0]))
    return ranked[:limit]


def revenue_by_customer(invoices: Iterable[Invoice]) -> dict[str, Decimal]:
    """Total invoiced (tax included) per customer id over finalized invoices."""
    revenue: defaultdict[str, Decimal] = defaultdict(lambda: Decimal("0.00"))
    for invoice in invoices:
        if invoice.finalized:
            revenue[invoice.customer.customer_id] += invoice_total(invoice)
    return dict(sorted(revenue.items()))


def low_stock_report(items: Mapping[str, StockItem], threshold: int = 5) -> str:
    """Plain-text list of items to reorder, built from ``low_stock``."""
    rows = low_stock(items, threshold)
    if not rows:
        return f"No items at or below {threshold} available units."
    lines = [f"Items at or below {threshold} available units:"]
    lines += [f"  {item.sku:<8} {item.product.name:<30} {item.available:>4} available" for item in rows]
    return "\n".join(lines)
