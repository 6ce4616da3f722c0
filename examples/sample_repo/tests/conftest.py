from datetime import date
from decimal import Decimal

import pytest

from stockroom import Customer, InvoiceNumberSequence, load_inventory, sample_inventory_path
from stockroom.models import StockItem


@pytest.fixture
def items() -> dict[str, StockItem]:
    """A fresh copy of the bundled sample inventory for every test."""
    return load_inventory(sample_inventory_path())


@pytest.fixture
def alice() -> Customer:
    """A silver-tier customer billed in the UK."""
    return Customer("C001", "Alice Martin", region="UK", lifetime_spend=Decimal("1200"))


@pytest.fixture
def bob() -> Customer:
    """A new (bronze-tier) customer billed in California."""
    return Customer("C002", "Bob Okafor", region="US-CA")


@pytest.fixture
def numbers() -> InvoiceNumberSequence:
    return InvoiceNumberSequence()


@pytest.fixture
def may_day() -> date:
    return date(2024, 5, 1)
