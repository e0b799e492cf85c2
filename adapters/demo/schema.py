"""The three demo business databases, as three unrelated companies' schemas.

Each system has its own MetaData because each lives in its own database and
knows nothing of the others: keys differ (integer, ``AC-000123``, uuid text)
and the only links are an email address or the billing account number that
sales sometimes remembers.  As in many legacy schemas there are no declared
foreign keys, only the indexes the screen pop's queries need; the seed
creates the tables with ``CreateTable`` (no indexes) and the indexes after
loading, which is much faster on PostgreSQL.

Portable types only (works on SQLite and PostgreSQL).  Money is NUMERIC; on
SQLite it is stored as REAL, so the demo queries format it with two decimals.
"""
from __future__ import annotations

from sqlalchemy import Boolean, Column, Date, DateTime, Index, Integer, MetaData, Numeric, String, Table, Text

SALES = MetaData()
BILLING = MetaData()
SUPPORT = MetaData()


def _ts(name: str, nullable: bool = True) -> Column:
    return Column(name, DateTime(timezone=True), nullable=nullable)


customers = Table(
    "customers", SALES,
    Column("customer_id", Integer, primary_key=True, autoincrement=False),
    Column("first_name", String(100)),
    Column("last_name", String(150)),
    Column("company", String(200)),
    Column("email", String(254)),
    Column("phone", String(40)),
    Column("mobile", String(40)),
    Column("billing_account", String(20)),  # set for some customers only, not always tidy
    Column("vip", Boolean, nullable=False),
    Column("lifetime_value", Numeric(12, 2), nullable=False),  # refreshed nightly, sometimes stale
    Column("customer_since", Date),
    Column("notes", Text),
)
products = Table(
    "products", SALES,
    Column("product_id", Integer, primary_key=True, autoincrement=False),
    Column("sku", String(20), nullable=False),
    Column("name", String(200), nullable=False),
    Column("unit_price", Numeric(10, 2), nullable=False),
)
orders = Table(
    "orders", SALES,
    Column("order_id", Integer, primary_key=True, autoincrement=False),
    Column("customer_id", Integer, nullable=False),
    Column("product_id", Integer, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("total", Numeric(12, 2), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),
    _ts("ordered_at", nullable=False),
)

accounts = Table(
    "accounts", BILLING,
    Column("account_no", String(20), primary_key=True),
    Column("holder_name", String(200), nullable=False),  # 'GARCIA LOPEZ, ANA' as often as 'Ana García'
    Column("email", String(254)),
    Column("phone", String(40)),
    Column("phone_alt", String(40)),
    Column("currency", String(3), nullable=False),
    Column("balance", Numeric(12, 2), nullable=False),  # snapshot of the nightly run...
    Column("overdue_amount", Numeric(12, 2), nullable=False),
    _ts("balance_as_of", nullable=False),  # ...taken at this time
    Column("status", String(12), nullable=False),
    Column("opened_on", Date, nullable=False),
)
invoices = Table(
    "invoices", BILLING,
    Column("invoice_no", String(24), primary_key=True),
    Column("account_no", String(20), nullable=False),
    Column("issued_on", Date, nullable=False),
    Column("due_on", Date, nullable=False),
    Column("amount", Numeric(12, 2), nullable=False),
    Column("status", String(12), nullable=False),  # paid | open | overdue
)
payments = Table(
    "payments", BILLING,
    Column("payment_id", Integer, primary_key=True, autoincrement=False),
    Column("account_no", String(20), nullable=False),
    Column("invoice_no", String(24)),
    _ts("paid_at", nullable=False),
    Column("amount", Numeric(12, 2), nullable=False),
    Column("method", String(16), nullable=False),
)

contacts = Table(
    "contacts", SUPPORT,
    Column("contact_id", String(36), primary_key=True),  # uuid as text
    Column("full_name", String(200)),
    Column("email", String(254)),
    Column("phone", String(40)),
    Column("phone_alt", String(40)),
    Column("organization", String(200)),
    Column("sla_tier", String(12), nullable=False),  # standard | premium | vip
    _ts("created_at", nullable=False),
    Column("notes", Text),
)
tickets = Table(
    "tickets", SUPPORT,
    Column("ticket_id", Integer, primary_key=True, autoincrement=False),
    Column("contact_id", String(36), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("status", String(12), nullable=False),  # open | pending | solved | closed
    Column("priority", String(8), nullable=False),
    Column("channel", String(12), nullable=False),
    _ts("opened_at", nullable=False),
    _ts("updated_at", nullable=False),
)
ticket_updates = Table(
    "ticket_updates", SUPPORT,
    Column("update_id", Integer, primary_key=True, autoincrement=False),
    Column("ticket_id", Integer, nullable=False),
    _ts("at", nullable=False),
    Column("author", String(100), nullable=False),
    Column("body", Text, nullable=False),
    Column("public", Boolean, nullable=False),
)

Index("ix_orders_customer", orders.c.customer_id, orders.c.ordered_at)
Index("ix_invoices_account", invoices.c.account_no, invoices.c.issued_on)
Index("ix_payments_account", payments.c.account_no)
Index("ix_tickets_contact", tickets.c.contact_id, tickets.c.updated_at)
Index("ix_updates_ticket", ticket_updates.c.ticket_id, ticket_updates.c.at)

SYSTEMS: dict[str, MetaData] = {"sales": SALES, "billing": BILLING, "support": SUPPORT}
