"""Who is in which system and how many child rows each customer has.

Drawn first, from its own random stream, so the seed knows every table's
exact row count before writing a single row (the progress bars are honest)
and so the content generator can be changed without reshuffling who is
where.  Compact arrays: a million customers cost a few megabytes.
"""
from __future__ import annotations

import datetime as dt
import random
from array import array
from bisect import bisect
from dataclasses import dataclass, field
from itertools import accumulate

SALES, BILLING, SUPPORT, COLLEAGUE, COMPANY = 1, 2, 4, 8, 16

ORDERS_WEIGHTS = (10, 25, 22, 15, 10, 7, 5, 4, 2)  # 0..8 orders
INVOICE_WEIGHTS = (12, 12, 12, 10, 10, 8, 8, 6, 6, 6, 5, 5)  # 1..12 invoices
UNPAID_WEIGHTS = (60, 28, 8, 4)  # 0..3 most recent invoices unpaid
TICKET_WEIGHTS = (30, 35, 18, 10, 5, 2)  # 0..5 tickets
UPDATE_WEIGHTS = (35, 35, 20, 10)  # 1..4 updates per ticket


def picker(weights: tuple[int, ...], rng: random.Random, start: int = 0):
    """A fast weighted draw (random.choices is slow in a loop of millions)."""
    cum = list(accumulate(weights))
    total = cum[-1]
    rand = rng.random
    return lambda: start + bisect(cum, rand() * total)


@dataclass(slots=True)
class Plan:
    customers: int
    flags: bytearray
    orders: bytearray
    invoices: bytearray
    unpaid: bytearray
    tickets: bytearray
    updates: array  # per customer: update counts of its tickets, 2 bits each (count - 1)
    totals: dict[str, int] = field(default_factory=dict)

    def ticket_updates(self, i: int) -> list[int]:
        packed = self.updates[i]
        return [((packed >> (2 * t)) & 3) + 1 for t in range(self.tickets[i])]


def make_plan(customers: int, seed: int) -> Plan:
    rng = random.Random(f"screenpop-plan-{seed}")
    rand = rng.random
    n_orders = picker(ORDERS_WEIGHTS, rng)
    n_invoices = picker(INVOICE_WEIGHTS, rng, 1)
    n_unpaid = picker(UNPAID_WEIGHTS, rng)
    n_tickets = picker(TICKET_WEIGHTS, rng)
    n_updates = picker(UPDATE_WEIGHTS, rng, 1)
    plan = Plan(
        customers,
        bytearray(customers), bytearray(customers), bytearray(customers),
        bytearray(customers), bytearray(customers), array("H", bytes(2 * customers)),
    )
    for i in range(customers):
        flags = (SALES if rand() < 0.78 else 0) | (BILLING if rand() < 0.62 else 0) | (SUPPORT if rand() < 0.50 else 0)
        if not flags:
            flags = (SALES, BILLING, SUPPORT)[int(rand() * 3)]
        if rand() < 0.35:
            flags |= COMPANY
        if i and rand() < 0.03:
            # A colleague of the previous customer: same company, same
            # switchboard number, both known to sales.
            flags |= COLLEAGUE | COMPANY | SALES
            plan.flags[i - 1] |= COMPANY | SALES
        plan.flags[i] = flags
        plan.orders[i] = n_orders()  # drawn for everyone so the stream does not depend on membership
        invoices = n_invoices()
        plan.invoices[i] = invoices
        plan.unpaid[i] = min(n_unpaid(), invoices)
        tickets = n_tickets()
        plan.tickets[i] = tickets
        packed = 0
        for t in range(tickets):
            packed |= (n_updates() - 1) << (2 * t)
        plan.updates[i] = packed
    plan.totals = _totals(plan)
    return plan


def _totals(plan: Plan) -> dict[str, int]:
    t = dict.fromkeys(
        ("sales.customers", "sales.orders", "billing.accounts", "billing.invoices", "billing.payments",
         "support.contacts", "support.tickets", "support.ticket_updates"), 0)
    for i in range(plan.customers):
        flags = plan.flags[i]
        if flags & SALES:
            t["sales.customers"] += 1
            t["sales.orders"] += plan.orders[i]
        if flags & BILLING:
            t["billing.accounts"] += 1
            t["billing.invoices"] += plan.invoices[i]
            t["billing.payments"] += plan.invoices[i] - plan.unpaid[i]
        if flags & SUPPORT:
            t["support.contacts"] += 1
            t["support.tickets"] += plan.tickets[i]
            t["support.ticket_updates"] += sum(plan.ticket_updates(i))
    return t


def nightly_run(today: dt.date) -> dt.datetime:
    """When the billing system's nightly snapshot of ``today`` was taken:
    02:00 UTC, or now when seeding between midnight and 02:00 UTC.  A
    snapshot time still to come would make every balance pushed meanwhile
    look older than the stored one, and the card rightly ignores older
    balances (the cluster test failed when CI ran at 00:13 UTC)."""
    return min(dt.datetime.combine(today, dt.time(2, 0), tzinfo=dt.timezone.utc), dt.datetime.now(dt.timezone.utc))
