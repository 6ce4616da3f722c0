"""A small repository to index: an invoice module, an inventory module, an app, a README."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

FILES = {
    "billing/__init__.py": "",
    "billing/invoice.py": '''
        """Invoices and their lines."""

        from dataclasses import dataclass, field

        TAX_RATE = 0.2


        @dataclass
        class Invoice:
            """A customer invoice."""

            customer: str
            lines: list[tuple[str, float]] = field(default_factory=list)

            def add_line(self, item: str, price: float) -> None:
                """Append an item with its price."""
                self.lines.append((item, price))

            def total(self) -> float:
                """Sum of the line prices plus tax."""
                return sum(price for _, price in self.lines) * (1 + TAX_RATE)


        # Used by the app and by the nightly export.
        def render_invoice(invoice: Invoice) -> str:
            """Format an invoice as printable text."""
            rows = [f"{item}: {price:.2f}" for item, price in invoice.lines]
            return "\\n".join([invoice.customer, *rows])


        DEFAULT_CURRENCY = "EUR"
        ''',
    "billing/inventory.py": '''
        """Stock levels read from CSV files."""

        import csv
        from pathlib import Path


        def load_inventory(path: Path) -> dict[str, int]:
            """Read stock counts from a CSV file with item and count columns."""
            with open(path, newline="") as f:
                return {row["item"]: int(row["count"]) for row in csv.DictReader(f)}


        def reorder_needed(stock: dict[str, int], threshold: int = 5) -> list[str]:
            """Items whose stock fell below the reorder threshold."""
            return [item for item, count in stock.items() if count < threshold]
        ''',
    "billing/app.py": '''
        from billing.inventory import load_inventory
        from billing.invoice import Invoice, render_invoice

        __all__ = ["checkout", "load_inventory"]


        def checkout(customer: str, prices: dict[str, float], stock_file: str) -> str:
            """Bill a customer for the items that are in stock."""
            stock = load_inventory(stock_file)
            invoice = Invoice(customer)
            for item, price in prices.items():
                if stock.get(item, 0) > 0:
                    invoice.add_line(item, price)
            return render_invoice(invoice)
        ''',
    "README.md": '''
        # billing

        Call load_inventory to read the stock file; preload_inventory is not a thing.
        ''',
}


def write_repo(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The billing repository, written under tmp_path/repo."""
    return write_repo(tmp_path / "repo", FILES)
