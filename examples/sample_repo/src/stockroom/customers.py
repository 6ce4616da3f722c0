"""Customer lookup and loyalty tiers."""

from collections.abc import Iterable, Mapping
from dataclasses import replace
from decimal import Decimal

from stockroom.errors import UnknownCustomerError
from stockroom.models import Customer

#: (minimum lifetime spend, tier name, loyalty discount rate), highest tier first.
LOYALTY_TIERS: tuple[tuple[Decimal, str, Decimal], ...] = (
    (Decimal("5000"), "gold", Decimal("0.10")),
    (Decimal("1000"), "silver", Decimal("0.05")),
    (Decimal("0"), "bronze", Decimal("0")),
)


def index_customers(customers: Iterable[Customer]) -> dict[str, Customer]:
    """Build a dict of customers keyed by customer id, rejecting duplicate ids."""
    index: dict[str, Customer] = {}
    for customer in customers:
        if customer.customer_id in index:
            raise ValueError(f"duplicate customer id: {customer.customer_id}")
        index[customer.customer_id] = customer
    return index


def find_customer(index: Mapping[str, Customer], customer_id: str) -> Customer:
    """Return the customer with ``customer_id`` or raise ``UnknownCustomerError``."""
    try:
        return index[customer_id]
    except KeyError:
        raise UnknownCustomerError(customer_id) from None


def search_customers_by_name(customers: Iterable[Customer], query: str) -> list[Customer]:
    """Customers whose name contains ``query``, case-insensitively, sorted by name."""
    needle = query.casefold().strip()
    return sorted(
        (customer for customer in customers if needle in customer.name.casefold()),
        key=lambda customer: customer.name,
    )


def loyalty_tier(customer: Customer) -> str:
    """Name of the loyalty tier (gold, silver or bronze) the customer's lifetime spend earns."""
    for minimum, name, _rate in LOYALTY_TIERS:
        if customer.lifetime_spend >= minimum:
            return name
    return LOYALTY_TIERS[-1][1]


def loyalty_discount_rate(customer: Customer) -> Decimal:
    """Discount rate the customer gets from their loyalty tier."""
    tier = loyalty_tier(customer)
    return next(rate for _minimum, name, rate in LOYALTY_TIERS if name == tier)


def record_purchase(customer: Customer, amount: Decimal) -> Customer:
    """Return a copy of the customer with ``amount`` added to their lifetime spend."""
    if amount < 0:
        raise ValueError("purchase amount cannot be negative")
    return replace(customer, lifetime_spend=customer.lifetime_spend + amount)
