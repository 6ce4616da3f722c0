"""Plain data classes shared by the rest of the package."""

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal


@dataclass(frozen=True)
class Product:
    """A sellable product, identified by its SKU."""

    sku: str
    name: str
    unit_price: Decimal
    category: str = "general"


@dataclass
class StockItem:
    """How many units of a product are on the shelf, and how many are spoken for."""

    product: Product
    quantity: int
    reserved: int = 0

    @property
    def sku(self) -> str:
        """The SKU of the underlying product."""
        return self.product.sku

    @property
    def available(self) -> int:
        """Units that can still be sold: on hand minus reserved."""
        return self.quantity - self.reserved

    @property
    def stock_value(self) -> Decimal:
        """Value of all units on hand at the product's unit price."""
        return self.product.unit_price * self.quantity


@dataclass(frozen=True)
class Customer:
    """A customer with the tax region they are billed in."""

    customer_id: str
    name: str
    region: str
    lifetime_spend: Decimal = Decimal("0")
    email: str | None = None


@dataclass(frozen=True)
class InvoiceLine:
    """One line on an invoice: a quantity of a product at a price and discount."""

    sku: str
    description: str
    quantity: int
    unit_price: Decimal
    discount_rate: Decimal = Decimal("0")


@dataclass
class Invoice:
    """An invoice raised for a customer, made up of invoice lines."""

    number: str
    customer: Customer
    issued_on: date
    lines: list[InvoiceLine] = field(default_factory=list)
    finalized: bool = False

    @property
    def item_count(self) -> int:
        """Total number of units across all lines."""
        return sum(line.quantity for line in self.lines)
