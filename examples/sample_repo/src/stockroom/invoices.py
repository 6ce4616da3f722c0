"""Raising invoices: numbering, adding lines, totals and plain-text rendering."""

from collections.abc import MutableMapping
from datetime import date
from decimal import Decimal

from stockroom.customers import loyalty_discount_rate, loyalty_tier, record_purchase
from stockroom.inventory import get_stock_item, release_reservation, reserve, ship_reserved
from stockroom.models import Customer, Invoice, InvoiceLine, StockItem
from stockroom.pricing import bulk_discount_rate, format_money, line_total, tax_for_region


class InvoiceNumberSequence:
    """Hands out consecutive invoice numbers such as ``INV-00001``."""

    def __init__(self, prefix: str = "INV", start: int = 1, width: int = 5) -> None:
        if start < 1:
            raise ValueError("invoice numbers start at 1 or later")
        self.prefix = prefix
        self.width = width
        self._next = start

    def next_number(self) -> str:
        """Return the next invoice number and advance the sequence."""
        number = f"{self.prefix}-{self._next:0{self.width}d}"
        self._next += 1
        return number


def create_invoice(customer: Customer, numbers: InvoiceNumberSequence, issued_on: date | None = None) -> Invoice:
    """Open a new, empty invoice for ``customer`` with the next number from ``numbers``."""
    return Invoice(number=numbers.next_number(), customer=customer, issued_on=issued_on or date.today())


def line_discount_rate(customer: Customer, quantity: int) -> Decimal:
    """Discount for a line: the better of the bulk-quantity and the loyalty discount."""
    return max(bulk_discount_rate(quantity), loyalty_discount_rate(customer))


def add_line(invoice: Invoice, items: MutableMapping[str, StockItem], sku: str, quantity: int) -> InvoiceLine:
    """Reserve stock for ``quantity`` of ``sku`` and append a priced line to the invoice."""
    if invoice.finalized:
        raise ValueError(f"invoice {invoice.number} is finalized and cannot be changed")
    item = get_stock_item(items, sku)
    reserve(items, sku, quantity)
    line = InvoiceLine(
        sku=sku,
        description=item.product.name,
        quantity=quantity,
        unit_price=item.product.unit_price,
        discount_rate=line_discount_rate(invoice.customer, quantity),
    )
    invoice.lines.append(line)
    return line


def invoice_line_total(line: InvoiceLine) -> Decimal:
    """Net total of one invoice line after its discount."""
    return line_total(line.quantity, line.unit_price, line.discount_rate)


def invoice_subtotal(invoice: Invoice) -> Decimal:
    """Sum of the invoice's net line totals, before tax."""
    return sum((invoice_line_total(line) for line in invoice.lines), Decimal("0.00"))


def invoice_tax(invoice: Invoice) -> Decimal:
    """Tax on the invoice subtotal for the customer's billing region."""
    return tax_for_region(invoice_subtotal(invoice), invoice.customer.region)


def invoice_total(invoice: Invoice) -> Decimal:
    """Amount the customer pays: subtotal plus regional tax."""
    return invoice_subtotal(invoice) + invoice_tax(invoice)


def finalize_invoice(invoice: Invoice, items: MutableMapping[str, StockItem]) -> Customer:
    """Ship the reserved stock, lock the invoice and return the customer with updated spend."""
    if invoice.finalized:
        raise ValueError(f"invoice {invoice.number} is already finalized")
    if not invoice.lines:
        raise ValueError(f"invoice {invoice.number} has no lines")
    for line in invoice.lines:
        ship_reserved(items, line.sku, line.quantity)
    invoice.finalized = True
    return record_purchase(invoice.customer, invoice_subtotal(invoice))


def cancel_invoice(invoice: Invoice, items: MutableMapping[str, StockItem]) -> None:
    """Drop an open invoice's lines and release the stock they had reserved."""
    if invoice.finalized:
        raise ValueError(f"invoice {invoice.number} is finalized and cannot be cancelled")
    for line in invoice.lines:
        release_reservation(items, line.sku, line.quantity)
    invoice.lines.clear()


def render_invoice(invoice: Invoice, currency: str = "GBP") -> str:
    """Render the invoice as fixed-width plain text, one row per line plus totals."""
    customer = invoice.customer
    out = [
        f"Invoice {invoice.number}    issued {invoice.issued_on.isoformat()}",
        f"Bill to: {customer.name} ({customer.customer_id}), region {customer.region}, "
        f"{loyalty_tier(customer)} tier",
        "-" * 72,
    ]
    for line in invoice.lines:
        discount = f"-{line.discount_rate * 100:.0f}%" if line.discount_rate else ""
        out.append(
            f"{line.sku:<8} {line.description[:28]:<28} {line.quantity:>4} x {line.unit_price:>8.2f}"
            f" {discount:>5} {invoice_line_total(line):>10.2f}"
        )
    out.append("-" * 72)
    out.append(f"{'Subtotal':<58}{format_money(invoice_subtotal(invoice), currency):>14}")
    out.append(f"{'Tax':<58}{format_money(invoice_tax(invoice), currency):>14}")
    out.append(f"{'Total':<58}{format_money(invoice_total(invoice), currency):>14}")
    return "\n".join(out)
