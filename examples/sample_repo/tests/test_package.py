import stockroom


def test_all_names_are_exported():
    missing = [name for name in stockroom.__all__ if not hasattr(stockroom, name)]
    assert missing == []
    assert stockroom.__version__ == "0.1.0"


def test_errors_share_a_base_class():
    for name in ("OutOfStockError", "UnknownProductError", "UnknownCustomerError", "UnknownRegionError"):
        assert issubclass(getattr(stockroom, name), stockroom.StockroomError)
