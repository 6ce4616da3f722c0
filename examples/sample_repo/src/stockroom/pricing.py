"""Money arithmetic: rounding, discounts, bulk tiers, regional tax and line totals."""

from decimal import ROUND_HALF_UP, Decimal

from stockroom.errors import InvalidQuantityError, UnknownRegionError

CENT = Decimal("0.01")

#: VAT / sales-tax rate per billing region.
REGION_TAX_RATES: dict[str, Decimal] = {
    "UK": Decimal("0.20"),
    "DE": Decimal("0.19"),
    "FR": Decimal("0.20"),
    "IE": Decimal("0.23"),
    "US-CA": Decimal("0.0725"),
    "US-OR": Decimal("0"),
}

#: (minimum quantity, discount rate), checked from the largest threshold down.
BULK_DISCOUNT_TIERS: tuple[tuple[int, Decimal], ...] = (
    (100, Decimal("0.10")),
    (20, Decimal("0.05")),
)


def round_money(amount: Decimal) -> Decimal:
    """Round an amount to whole cents, halves rounded away from zero."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def apply_discount(amount: Decimal, rate: Decimal) -> Decimal:
    """Return ``amount`` reduced by a fractional discount ``rate`` (0.1 = 10 %), rounded."""
    if not Decimal("0") <= rate <= Decimal("1"):
        raise ValueError(f"discount rate must be between 0 and 1, got {rate}")
    return round_money(amount * (Decimal("1") - rate))


def bulk_discount_rate(quantity: int) -> Decimal:
    """Discount rate earned by buying ``quantity`` units of one product in one line."""
    for minimum, rate in BULK_DISCOUNT_TIERS:
        if quantity >= minimum:
            return rate
    return Decimal("0")


def tax_rate_for_region(region: str) -> Decimal:
    """Look up the tax rate for a region code such as ``"UK"`` or ``"US-CA"``."""
    try:
        return REGION_TAX_RATES[region.upper()]
    except KeyError:
        raise UnknownRegionError(f"no tax rate configured for region {region!r}") from None


def tax_for_region(amount: Decimal, region: str) -> Decimal:
    """Compute the tax owed on a net ``amount`` billed in ``region``, rounded to the cent."""
    return round_money(amount * tax_rate_for_region(region))


def line_total(quantity: int, unit_price: Decimal, discount_rate: Decimal = Decimal("0")) -> Decimal:
    """Net total of one order line: quantity times unit price, less the discount."""
    if quantity <= 0:
        raise InvalidQuantityError(f"quantity must be positive, got {quantity}")
    return apply_discount(unit_price * quantity, discount_rate)


def format_money(amount: Decimal, currency: str = "GBP") -> str:
    """Format an amount for display, e.g. ``GBP 1,234.50``."""
    return f"{currency} {round_money(amount):,.2f}"
