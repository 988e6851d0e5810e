"""An online shop's nightly batch: load orders, check stock, charge cards, ship, send receipts, report.

    rqdag run examples/shop.py:nightly --param day=2026-11-28

``check_stock`` calls a flaky warehouse API and is retried; ``charge_cards`` is
at-most-once (rqdag never starts it twice) and passes ``ctx.idempotency_key`` to
the payment provider, so even a charge sent twice by hand is made once. The
provider here is a stand-in that keeps its charges in
``.rqdag/shop-payments.jsonl``; give workers a real one with
``--context examples/shop.py:make_context``.
"""

from __future__ import annotations

import fcntl
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rqdag import Retry, TaskContext, Workflow

nightly = Workflow("shop-nightly")

PAYMENTS = Path(".rqdag") / "shop-payments.jsonl"


@dataclass
class PaymentGateway:
    """A stand-in payment provider: like real ones, a repeated idempotency key returns the first charge."""

    ledger: Path = field(default_factory=lambda: PAYMENTS)

    def charge(self, order: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        """Charge ``order`` once per ``idempotency_key``; returns the charge."""
        self.ledger.parent.mkdir(parents=True, exist_ok=True)
        with self.ledger.open("a+") as book:
            fcntl.flock(book, fcntl.LOCK_EX)
            book.seek(0)
            for line in book:
                charge: dict[str, Any] = json.loads(line)
                if charge["key"] == idempotency_key:
                    return charge
            charge = {"key": idempotency_key, "order": order["id"], "amount": order["amount"]}
            book.write(json.dumps(charge) + "\n")
            return charge


@dataclass
class ShopContext:
    """What every task of a worker shares (built once per worker process)."""

    gateway: PaymentGateway


def make_context() -> ShopContext:
    """The worker's ``--context`` factory."""
    return ShopContext(gateway=PaymentGateway())


@nightly.task()
def load_orders(ctx: TaskContext) -> list[dict[str, Any]]:
    """The day's orders (made up from the date, so every run of a day sees the same ones)."""
    day = str(ctx.params.get("day", "2026-11-28"))
    seed = sum(map(ord, day))
    return [
        {"id": f"{day}-{n}", "sku": f"sku-{(seed + n) % 7}", "amount": 5 + (seed * n) % 40} for n in range(5)
    ]


@nightly.task(depends_on=["load_orders"], retry=Retry(attempts=2, delay_s=0.2))
def check_stock(ctx: TaskContext) -> list[dict[str, Any]]:
    """Ask the warehouse which orders it can ship; its API times out on the first call."""
    if ctx.attempt == 1:
        raise ConnectionError("warehouse API timed out")
    time.sleep(0.1)
    return [order for order in ctx.inputs["load_orders"] if order["sku"] != "sku-0"]


@nightly.task(depends_on=["check_stock"], at_most_once=True, timeout_s=30)
def charge_cards(ctx: TaskContext) -> dict[str, Any]:
    """Charge each order in stock, once: the provider sees the same key on every attempt."""
    gateway = ctx.context.gateway if isinstance(ctx.context, ShopContext) else PaymentGateway()
    charges = [
        gateway.charge(order, idempotency_key=f"{ctx.idempotency_key}:{order['id']}")
        for order in ctx.inputs["check_stock"]
    ]
    return {"charged": len(charges), "total": sum(c["amount"] for c in charges)}


@nightly.task(depends_on=["check_stock", "charge_cards"])
def ship(ctx: TaskContext) -> list[str]:
    """Book a parcel for each charged order."""
    return [f"parcel-{order['id']}" for order in ctx.inputs["check_stock"]]


@nightly.task(depends_on=["check_stock", "charge_cards"])
def email_receipts(ctx: TaskContext) -> int:
    """Send one receipt per charged order."""
    return len(ctx.inputs["check_stock"])


@nightly.task(depends_on=["load_orders", "charge_cards", "ship", "email_receipts"])
def daily_report(ctx: TaskContext) -> dict[str, Any]:
    """The day in one line for the finance team."""
    return {
        "day": ctx.params.get("day", "2026-11-28"),
        "orders": len(ctx.inputs["load_orders"]),
        "shipped": len(ctx.inputs["ship"]),
        "receipts": ctx.inputs["email_receipts"],
        "revenue": ctx.inputs["charge_cards"]["total"],
    }
