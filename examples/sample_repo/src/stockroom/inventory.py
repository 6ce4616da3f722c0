"""Stock levels: reading and writing the inventory CSV, restocking and reservations."""

import csv
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path

from stockroom.errors import InvalidQuantityError, OutOfStockError, UnknownProductError
from stockroom.models import Product, StockItem

CSV_FIELDS = ("sku", "name", "category", "unit_price", "quantity", "reserved")


def sample_inventory_path() -> Path:
    """Path of the sample inventory CSV bundled with the package."""
    return Path(__file__).parent / "data" / "sample_inventory.csv"


def parse_stock_row(row: Mapping[str, str]) -> StockItem:
    """Turn one CSV row (as read by ``csv.DictReader``) into a ``StockItem``."""
    try:
        price = Decimal(row["unit_price"])
    except InvalidOperation:
        raise ValueError(f"bad unit_price {row['unit_price']!r} for {row['sku']}") from None
    product = Product(
        sku=row["sku"].strip(),
        name=row["name"].strip(),
        unit_price=price,
        category=(row.get("category") or "general").strip(),
    )
    return StockItem(product, quantity=int(row["quantity"]), reserved=int(row.get("reserved") or 0))


def load_inventory(path: str | Path) -> dict[str, StockItem]:
    """Read an inventory CSV file into a dict of stock items keyed by SKU."""
    items: dict[str, StockItem] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            item = parse_stock_row(row)
            if item.sku in items:
                raise ValueError(f"duplicate SKU in inventory file: {item.sku}")
            items[item.sku] = item
    return items


def save_inventory(items: Mapping[str, StockItem], path: str | Path) -> None:
    """Write stock items back to a CSV file, sorted by SKU, in the format ``load_inventory`` reads."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for sku in sorted(items):
            item = items[sku]
            writer.writerow(
                {
                    "sku": item.sku,
                    "name": item.product.name,
                    "category": item.product.category,
                    "unit_price": str(item.product.unit_price),
                    "quantity": item.quantity,
                    "reserved": item.reserved,
                }
            )


def get_stock_item(items: Mapping[str, StockItem], sku: str) -> StockItem:
    """Return the stock item for ``sku`` or raise ``UnknownProductError``."""
    try:
        return items[sku]
    except KeyError:
        raise UnknownProductError(sku) from None


def _check_positive(quantity: int) -> None:
    if quantity <= 0:
        raise InvalidQuantityError(f"quantity must be positive, got {quantity}")


def restock(items: Mapping[str, StockItem], sku: str, quantity: int) -> StockItem:
    """Add ``quantity`` newly delivered units of ``sku`` to the shelf."""
    _check_positive(quantity)
    item = get_stock_item(items, sku)
    item.quantity += quantity
    return item


def reserve(items: Mapping[str, StockItem], sku: str, quantity: int) -> StockItem:
    """Hold ``quantity`` units of ``sku`` for an order; raises ``OutOfStockError`` if short."""
    _check_positive(quantity)
    item = get_stock_item(items, sku)
    if quantity > item.available:
        raise OutOfStockError(sku, quantity, item.available)
    item.reserved += quantity
    return item


def release_reservation(items: Mapping[str, StockItem], sku: str, quantity: int) -> StockItem:
    """Give back ``quantity`` previously reserved units of ``sku`` (e.g. a cancelled order)."""
    _check_positive(quantity)
    item = get_stock_item(items, sku)
    if quantity > item.reserved:
        raise InvalidQuantityError(f"{sku}: cannot release {quantity}, only {item.reserved} reserved")
    item.reserved -= quantity
    return item


def ship_reserved(items: Mapping[str, StockItem], sku: str, quantity: int) -> StockItem:
    """Ship reserved units: remove them from both the reservation and the shelf."""
    release_reservation(items, sku, quantity)
    item = items[sku]
    item.quantity -= quantity
    return item


def low_stock(items: Mapping[str, StockItem] | Iterable[StockItem], threshold: int = 5) -> list[StockItem]:
    """Stock items whose available units are at or below ``threshold``, scarcest first."""
    values = items.values() if isinstance(items, Mapping) else items
    found = [item for item in values if item.available <= threshold]
    return sorted(found, key=lambda item: (item.available, item.sku))
