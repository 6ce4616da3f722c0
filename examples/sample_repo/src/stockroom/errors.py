"""Exceptions raised by stockroom."""


class StockroomError(Exception):
    """Base class for every error raised by this package."""


class UnknownProductError(StockroomError, KeyError):
    """Raised when a SKU is not present in the inventory."""

    def __init__(self, sku: str) -> None:
        super().__init__(sku)
        self.sku = sku

    def __str__(self) -> str:
        return f"unknown product: {self.sku!r}"


class OutOfStockError(StockroomError):
    """Raised when more units are requested than are available to sell."""

    def __init__(self, sku: str, requested: int, available: int) -> None:
        super().__init__(f"{sku}: requested {requested}, only {available} available")
        self.sku = sku
        self.requested = requested
        self.available = available


class UnknownCustomerError(StockroomError, KeyError):
    """Raised when a customer id cannot be found."""

    def __init__(self, customer_id: str) -> None:
        super().__init__(customer_id)
        self.customer_id = customer_id

    def __str__(self) -> str:
        return f"unknown customer: {self.customer_id!r}"


class UnknownRegionError(StockroomError, ValueError):
    """Raised when no tax rate is configured for a region code."""


class InvalidQuantityError(StockroomError, ValueError):
    """Raised when a quantity is zero, negative or otherwise unusable."""
