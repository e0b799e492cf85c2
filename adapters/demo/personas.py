"""The fixed people of the demo: the callers of the real AMI captures.

The simulator and the captures call these numbers, so the demo must pop
known faces with known facts (Ana owes 125.40 and has an open ticket, Carla
is overdue, Frank is VIP).  They are written by hand, not drawn at random,
so they are identical whatever the seed; only their dates follow ``today``.
Random customers never get these numbers (see ``phones.RESERVED``) nor these
keys (random keys start at 1000).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from adapters.demo.names import HOSTILE_NAMES, HOSTILE_NOTE, SCRIPT


@dataclass(frozen=True, slots=True)
class Persona:
    name: str
    e164: str  # the number the demo calls
    keys: dict[str, str]  # system -> record key; absent from the systems that do not know them
    note: str = ""


PERSONAS: tuple[Persona, ...] = (
    Persona("Ana Garcia", "+34912345678", {"sales": "101", "billing": "AC-000123", "support": "a0000000-0000-4000-8000-000000000001"}, "balance 125.40 EUR, open ticket"),
    Persona("Bob Smith", "+14155550100", {"sales": "102", "support": "a0000000-0000-4000-8000-000000000002"}),
    Persona("Carla Ruiz", "+34912345679", {"billing": "AC-000124"}, "overdue 240.00 EUR"),
    Persona("Frank Moreno", "+34600111222", {"sales": "103", "billing": "AC-000125", "support": "a0000000-0000-4000-8000-000000000003"}, "VIP; landline +34913000333 too"),
    Persona("Hector Lim", "+6591234567", {"sales": "104"}),
    Persona("Irene Vidal", "+34611223301", {"sales": "105", "billing": "AC-000126"}, "shares the switchboard +34912345680 with Jorge Soler"),
    Persona("Jorge Soler", "+34611223302", {"sales": "106"}, "shares the switchboard +34912345680 with Irene Vidal"),
    Persona(SCRIPT, "+34913000222", {"sales": "107", "billing": "AC-000127", "support": "a0000000-0000-4000-8000-000000000004"}, "hostile strings everywhere"),
)
# The captures' caller without a name (912345680) is the switchboard of
# Talleres Vidal: one number, two people, a card with candidates.
SHARED_NUMBER = "+34912345680"
UNKNOWN_NUMBERS = ("+34918812311", "+34914186027")  # the demo dials these; nobody may own them


def _d(value: str) -> Decimal:
    return Decimal(value)


def persona_rows(today: dt.date, night: dt.datetime) -> dict[str, list[dict]]:
    """Rows per ``system.table``; ``night``: the balances' snapshot time (:func:`nightly_run`)."""

    def ago(days: float, hour: int = 11) -> dt.datetime:
        return dt.datetime.combine(today - dt.timedelta(days=int(days)), dt.time(hour, 17, 5), tzinfo=dt.timezone.utc)

    def day(days: int) -> dt.date:
        return today - dt.timedelta(days=days)

    def customer(cid, first, last, company, email, phone, mobile, account, vip, ltv, years, notes=None):
        return dict(customer_id=cid, first_name=first, last_name=last, company=company, email=email, phone=phone,
                    mobile=mobile, billing_account=account, vip=vip, lifetime_value=_d(ltv),
                    customer_since=day(365 * years), notes=notes)

    def order(oid, cid, pid, qty, total, status, days):
        return dict(order_id=oid, customer_id=cid, product_id=pid, quantity=qty, total=_d(total), currency="EUR",
                    status=status, ordered_at=ago(days))

    def account(no, holder, email, phone, balance, overdue, alt=None, currency="EUR", years=4):
        return dict(account_no=no, holder_name=holder, email=email, phone=phone, phone_alt=alt, currency=currency,
                    balance=_d(balance), overdue_amount=_d(overdue), balance_as_of=night, status="active",
                    opened_on=day(365 * years))

    def invoice(no, acc, issued, amount, status):
        return dict(invoice_no=no, account_no=acc, issued_on=day(issued), due_on=day(issued - 30), amount=_d(amount), status=status)

    def payment(pid, acc, inv, days, amount):
        return dict(payment_id=pid, account_no=acc, invoice_no=inv, paid_at=ago(days, 9), amount=_d(amount), method="direct_debit")

    def contact(cid, name, email, phone, tier, org=None, alt=None, notes=None):
        return dict(contact_id=cid, full_name=name, email=email, phone=phone, phone_alt=alt, organization=org,
                    sla_tier=tier, created_at=ago(900), notes=notes)

    def ticket(tid, cid, subject, status, priority, opened, updated):
        return dict(ticket_id=tid, contact_id=cid, subject=subject, status=status, priority=priority, channel="phone",
                    opened_at=ago(opened, 9), updated_at=ago(updated, 16))

    def update(uid, tid, days, hour, body, author="Marta (L1)"):
        return dict(update_id=uid, ticket_id=tid, at=ago(days, hour), author=author, body=body, public=True)

    ana, bob, frank, mal = (p.keys.get("support") for p in (PERSONAS[0], PERSONAS[1], PERSONAS[3], PERSONAS[7]))
    return {
        "sales.customers": [
            customer(101, "Ana", "Garcia", None, "ana.garcia@example.com", "+34 912 34 56 78", None, "AC-000123", False, "1847.30", 4, "Prefiere contacto por la tarde."),
            customer(102, "Bob", "Smith", "Smith Imports LLC", "bob.smith@example.net", "+1 415-555-0100", None, None, False, "560.00", 2),
            customer(103, "Frank", "Moreno", "Moreno Logística SL", "frank@moreno-logistica.example", "+34 913 00 03 33", "+34 600 11 12 22", "AC-000125", True, "12480.00", 9),
            customer(104, "Hector", "Lim", "Lim Trading Pte Ltd", "hector.lim@example.com", "+65 9123 4567", None, None, False, "2399.00", 1),
            customer(105, "Irene", "Vidal", "Talleres Vidal SL", "irene.vidal@talleres-vidal.example", "+34 912 34 56 80", "+34 611 22 33 01", "AC-000126", False, "3310.00", 6),
            customer(106, "Jorge", "Soler", "Talleres Vidal SL", "jorge.soler@talleres-vidal.example", "+34912345680", "+34 611 22 33 02", None, False, "415.00", 3),
            customer(107, SCRIPT, HOSTILE_NAMES[1], HOSTILE_NAMES[2], "mallory@example.com", "+34 913 00 02 22", None, "AC-000127", False, "66.60", 1, HOSTILE_NOTE),
        ],
        "sales.orders": [
            order(1, 101, 1, 1, "649.00", "delivered", 400), order(2, 101, 12, 1, "79.00", "delivered", 400),
            order(3, 101, 7, 1, "1119.30", "delivered", 35), order(4, 101, 14, 2, "19.98", "cancelled", 34),
            order(5, 102, 8, 1, "560.00", "delivered", 200),
            *(order(6 + i, 103, 3 + i, 1, total, "delivered", 30 + 60 * i) for i, total in enumerate(("1899.00", "2499.00", "3100.00", "2180.00", "1402.00", "1400.00"))),
            order(12, 104, 7, 1, "2399.00", "shipped", 2),
            order(13, 105, 2, 4, "3310.00", "delivered", 90), order(14, 106, 5, 1, "415.00", "returned", 60),
            order(15, 107, 14, 3, "66.60", "pending", 1),
        ],
        "billing.accounts": [
            account("AC-000123", "GARCIA, ANA", "Ana.Garcia@example.com", "0034912345678", "125.40", "0.00"),
            account("AC-000124", "Carla Ruiz", "carla.ruiz@example.org", "912 345 679", "359.90", "240.00"),
            account("AC-000125", "MORENO, FRANK", "FRANK@moreno-logistica.example", "0034600111222", "0.00", "0.00", alt="913 000 333", years=9),
            account("AC-000126", "TALLERES VIDAL SL", "administracion@talleres-vidal.example", "912 345 680", "1210.00", "0.00"),
            account("AC-000127", HOSTILE_NAMES[5], "MALLORY@example.com", "0034913000222", "66.60", "0.00", years=1),
        ],
        "billing.invoices": [
            invoice("INV-P-000001", "AC-000123", 70, "89.90", "paid"), invoice("INV-P-000002", "AC-000123", 40, "95.10", "paid"),
            invoice("INV-P-000003", "AC-000123", 10, "125.40", "open"),
            invoice("INV-P-000009", "AC-000124", 105, "120.00", "paid"), invoice("INV-P-000010", "AC-000124", 75, "120.00", "overdue"),
            invoice("INV-P-000011", "AC-000124", 45, "120.00", "overdue"), invoice("INV-P-000012", "AC-000124", 15, "119.90", "open"),
            invoice("INV-P-000020", "AC-000125", 40, "2180.00", "paid"), invoice("INV-P-000021", "AC-000125", 10, "1400.00", "paid"),
            invoice("INV-P-000030", "AC-000126", 12, "1210.00", "open"),
            invoice("INV-P-000040", "AC-000127", 1, "66.60", "open"),
        ],
        "billing.payments": [
            payment(1, "AC-000123", "INV-P-000001", 45, "89.90"), payment(2, "AC-000123", "INV-P-000002", 15, "95.10"),
            payment(3, "AC-000124", "INV-P-000009", 80, "120.00"),
            payment(4, "AC-000125", "INV-P-000020", 15, "2180.00"), payment(5, "AC-000125", "INV-P-000021", 2, "1400.00"),
        ],
        "support.contacts": [
            contact(ana, "Ana García", "ana.garcia@example.com", "(91) 234-5678", "standard"),
            contact(bob, "Bob Smith", "Bob.Smith@example.net", "+1 (415) 555-0100", "premium", org="Smith Imports"),
            contact(frank, "Frank Moreno", "frank@moreno-logistica.example", "600-11-12-22", "vip", org="Moreno Logística", alt="(91) 300-0333 ext 12"),
            contact(mal, HOSTILE_NAMES[3], "mallory@example.com", "(91) 300-0222", "standard", org=HOSTILE_NAMES[6], notes=HOSTILE_NOTE),
        ],
        "support.tickets": [
            ticket(1, ana, "La lavadora hace ruido", "open", "high", 3, 1),
            ticket(2, ana, "Entrega retrasada", "closed", "normal", 390, 380),
            ticket(3, bob, "Delivery delayed", "solved", "normal", 25, 20),
            ticket(4, frank, "Instalación pendiente", "pending", "urgent", 4, 2),
            ticket(5, mal, SCRIPT + " no funciona", "open", "low", 1, 1),
        ],
        "support.ticket_updates": [
            update(1, 1, 3, 9, "Cliente indica ruido fuerte en centrifugado."), update(2, 1, 1, 16, "Se envía técnico el jueves.", "Lucía (L2)"),
            update(3, 2, 390, 9, "Pedido no llegó en plazo."), update(4, 2, 380, 16, "Entregado, se cierra."),
            update(5, 3, 25, 9, "Customer asks for tracking number."), update(6, 3, 20, 16, "Delivered.", "bot"),
            update(7, 4, 4, 9, "Instalación programada."), update(8, 4, 2, 16, "Técnico sin disponibilidad, reprogramar."),
            update(9, 5, 1, 16, HOSTILE_NOTE),
        ],
    }
