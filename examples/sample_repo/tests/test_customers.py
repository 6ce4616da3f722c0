from decimal import Decimal

import pytest

from stockroom import (
    Customer,
    UnknownCustomerError,
    find_customer,
    index_customers,
    loyalty_discount_rate,
    loyalty_tier,
    record_purchase,
    search_customers_by_name,
)


@pytest.fixture
def customers(alice, bob) -> list[Customer]:
    return [alice, bob, Customer("C003", "Alina Berg", region="DE", lifetime_spend=Decimal("7500"))]


def test_find_customer_by_id(customers):
    index = index_customers(customers)
    assert find_customer(index, "C003").name == "Alina Berg"
    with pytest.raises(UnknownCustomerError) as excinfo:
        find_customer(index, "C999")
    assert excinfo.value.customer_id == "C999"


def test_index_rejects_duplicate_ids(alice):
    with pytest.raises(ValueError, match="duplicate customer id"):
        index_customers([alice, alice])


def test_search_customers_by_name_is_case_insensitive_and_sorted(customers):
    names = [customer.name for customer in search_customers_by_name(customers, "  ALI ")]
    assert names == ["Alice Martin", "Alina Berg"]
    assert search_customers_by_name(customers, "nobody") == []


def test_loyalty_tier_and_discount_follow_lifetime_spend():
    expected = {"0": ("bronze", "0"), "999.99": ("bronze", "0"), "1000": ("silver", "0.05"), "5000": ("gold", "0.10")}
    for spend, (tier, rate) in expected.items():
        customer = Customer("C9", "Test", region="UK", lifetime_spend=Decimal(spend))
        assert (loyalty_tier(customer), loyalty_discount_rate(customer)) == (tier, Decimal(rate))


def test_record_purchase_returns_new_customer_and_can_promote(alice):
    promoted = record_purchase(alice, Decimal("3800.00"))
    assert alice.lifetime_spend == Decimal("1200")  # original untouched
    assert promoted.lifetime_spend == Decimal("5000.00")
    assert loyalty_tier(promoted) == "gold"
    with pytest.raises(ValueError):
        record_purchase(alice, Decimal("-1"))
