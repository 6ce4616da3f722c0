"""stockroom: inventory, pricing and invoicing for a small shop."""

from stockroom.customers import (
    find_customer,
    index_customers,
    loyalty_discount_rate,
    loyalty_tier,
    record_purchase,
    search_customers_by_name,
)
from stockroom.errors import (
    InvalidQuantityError,
    OutOfStockError,
    StockroomError,
    UnknownCustomerError,
    UnknownProductError,
    UnknownRegionError,
)
from stockroom.inventory import (
    get_stock_item,
    load_inventory,
    low_stock,
    release_reservation,
    reserve,
    restock,
    sample_inventory_path,
    save_inventory,
    ship_reserved,
)
from stockroom.invoices import (
    InvoiceNumberSequence,
    add_line,
    cancel_invoice,
    create_invoice,
    finalize_invoice,
    invoice_subtotal,
    invoice_tax,
    invoice_total,
    render_invoice,
)
from stockroom.models import Customer, Invoice, InvoiceLine, Product, StockItem
from stockroom.pricing import apply_discount, bulk_discount_rate, line_total, round_money, tax_for_region
from stockroom.reports import low_stock_report, revenue_by_customer, stock_value_report, top_sellers

__version__ = "0.1.0"

__all__ = [
    "Customer",
    "InvalidQuantityError",
    "Invoice",
    "InvoiceLine",
    "InvoiceNumberSequence",
    "OutOfStockError",
    "Product",
    "StockItem",
    "StockroomError",
    "UnknownCustomerError",
    "UnknownProductError",
    "UnknownRegionError",
    "add_line",
    "apply_discount",
    "bulk_discount_rate",
    "cancel_invoice",
    "create_invoice",
    "finalize_invoice",
    "find_customer",
    "get_stock_item",
    "index_customers",
    "invoice_subtotal",
    "invoice_tax",
    "invoice_total",
    "line_total",
    "load_inventory",
    "low_stock",
    "low_stock_report",
    "loyalty_discount_rate",
    "loyalty_tier",
    "record_purchase",
    "release_reservation",
    "render_invoice",
    "reserve",
    "restock",
    "revenue_by_customer",
    "round_money",
    "sample_inventory_path",
    "save_inventory",
    "search_customers_by_name",
    "ship_reserved",
    "stock_value_report",
    "tax_for_region",
    "top_sellers",
]
