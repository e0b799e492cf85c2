"""The demo sources' queries: how screenpop reads the three demo databases.

Written the way an integrator would for a real company: plain SELECTs on the
existing schema, answering in the column vocabulary of
``customer_lookup.merge`` (``first_name``, ``balance``, ``open_tickets``...),
with child rows aggregated into ``*_json`` columns, so one round trip per
source gives the whole record.  JSON aggregation has no portable SQL, hence
one variant for SQLite and one for PostgreSQL; everything else is shared.

Money is rendered as text with two decimals on both engines (SQLite keeps
NUMERIC as REAL), and ``balance_as_of`` in the exact UTC format the pushed
balances use (``2026-11-23T02:00:00.000000Z``), because the card compares
the two as strings.
"""
from __future__ import annotations

from sqlalchemy.engine import make_url

from screenpop.config import SourceSettings

SYSTEMS = ("sales", "billing", "support")
DEFAULT_DSNS = {name: f"sqlite+aiosqlite:///var/demo/{name}.sqlite3" for name in SYSTEMS}

FIELDS = {
    "sales": ["first_name", "last_name", "company", "email", "vip", "billing_account", "lifetime_value",
              "customer_since", "recent_orders", "last_order_at", "notes"],
    "billing": ["account_no", "name", "email", "currency", "balance", "overdue_amount", "balance_as_of",
                "account_status", "invoices", "payments"],
    "support": ["name", "email", "company", "vip", "sla_tier", "open_tickets", "tickets_total", "last_contact", "notes"],
}

# A person with two numbers is two rows; blank numbers are skipped by the source.
PHONES = {
    "sales": "SELECT customer_id, phone FROM customers WHERE phone IS NOT NULL\n"
             "UNION ALL SELECT customer_id, mobile FROM customers WHERE mobile IS NOT NULL",
    "billing": "SELECT account_no, phone FROM accounts WHERE phone IS NOT NULL\n"
               "UNION ALL SELECT account_no, phone_alt FROM accounts WHERE phone_alt IS NOT NULL",
    "support": "SELECT contact_id, phone FROM contacts WHERE phone IS NOT NULL\n"
               "UNION ALL SELECT contact_id, phone_alt FROM contacts WHERE phone_alt IS NOT NULL",
}

# Per dialect: a timestamp as ISO UTC text, money as text, a JSON array of objects.
_SQLITE = {
    "ts": "strftime('%Y-%m-%dT%H:%M:%SZ', {})",
    "asof": "strftime('%Y-%m-%dT%H:%M:%S', {}) || '.000000Z'",
    "money": "printf('%.2f', {})",
    "obj": "json_object({})",
    "agg": "coalesce(json_group_array({}), '[]')",  # keeps the subquery's order
}
_POSTGRES = {
    "ts": "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
    "asof": "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
    "money": "({})::text",
    "obj": "json_build_object({})",
    "agg": "coalesce(json_agg({} ORDER BY {}), '[]')::text",
}


def record_query(system: str, dialect: str) -> str:
    d = _POSTGRES if dialect == "postgresql" else _SQLITE
    ts, asof, money = (lambda x, f=d[k]: f.format(x) for k in ("ts", "asof", "money"))

    def agg(pairs: str, table: str, where: str, order: str, limit: int, alias: str) -> str:
        inner = f"SELECT * FROM {table} WHERE {where} ORDER BY {order} LIMIT {limit}"
        outer = ", ".join(f"{alias}.{part.strip()}" for part in order.split(","))
        return f"(SELECT {d['agg'].format(d['obj'].format(pairs), outer)} FROM ({inner}) {alias})"

    if system == "sales":
        orders = agg(
            f"'id', o.order_id, 'ordered_at', {ts('o.ordered_at')}, 'product', "
            f"(SELECT name FROM products p WHERE p.product_id = o.product_id), 'quantity', o.quantity, "
            f"'total', {money('o.total')}, 'currency', o.currency, 'status', o.status",
            "orders", "customer_id = c.customer_id", "ordered_at DESC, order_id DESC", 5, "o")
        return (
            "SELECT c.first_name, c.last_name, c.company, c.email, c.vip, c.billing_account,\n"
            f"  {money('c.lifetime_value')} AS lifetime_value, c.customer_since,\n"
            f"  {orders} AS recent_orders_json,\n"
            f"  (SELECT {ts('max(ordered_at)')} FROM orders WHERE customer_id = c.customer_id) AS last_order_at,\n"
            "  c.notes\n"
            "FROM customers c WHERE c.customer_id = :key"
        )
    if system == "billing":
        invoices = agg(
            f"'number', i.invoice_no, 'issued_on', i.issued_on, 'due_date', i.due_on, "
            f"'amount', {money('i.amount')}, 'status', i.status",
            "invoices", "account_no = a.account_no", "issued_on DESC, invoice_no DESC", 6, "i")
        payments = agg(
            f"'id', p.payment_id, 'invoice', p.invoice_no, 'paid_at', {ts('p.paid_at')}, "
            f"'amount', {money('p.amount')}, 'method', p.method",
            "payments", "account_no = a.account_no", "paid_at DESC, payment_id DESC", 3, "p")
        return (
            "SELECT a.account_no, a.holder_name AS name, a.email, a.currency,\n"
            f"  {money('a.balance')} AS balance, {money('a.overdue_amount')} AS overdue_amount,\n"
            f"  {asof('a.balance_as_of')} AS balance_as_of, a.status AS account_status,\n"
            f"  {invoices} AS invoices_json,\n"
            f"  {payments} AS payments_json\n"
            "FROM accounts a WHERE a.account_no = :key"
        )
    if system == "support":
        tickets = agg(
            f"'id', t.ticket_id, 'subject', t.subject, 'status', t.status, 'priority', t.priority, "
            f"'opened_at', {ts('t.opened_at')}, 'updated_at', {ts('t.updated_at')}, "
            "'last_update', (SELECT body FROM ticket_updates u WHERE u.ticket_id = t.ticket_id ORDER BY u.at DESC, u.update_id DESC LIMIT 1)",
            "tickets", "contact_id = c.contact_id AND status IN ('open', 'pending')",
            "updated_at DESC, ticket_id DESC", 10, "t")
        return (
            "SELECT c.full_name AS name, c.email, c.organization AS company,\n"
            "  CASE WHEN c.sla_tier = 'vip' THEN 1 ELSE 0 END AS vip, c.sla_tier,\n"
            f"  {tickets} AS open_tickets_json,\n"
            "  (SELECT count(*) FROM tickets WHERE contact_id = c.contact_id) AS tickets_total,\n"
            f"  (SELECT {ts('max(updated_at)')} FROM tickets WHERE contact_id = c.contact_id) AS last_contact,\n"
            "  c.notes\n"
            "FROM contacts c WHERE c.contact_id = :key"
        )
    raise ValueError(f"unknown demo system {system!r}; expected one of {', '.join(SYSTEMS)}")


def demo_sources(dsns: dict[str, str] | None = None, *, deadline_ms: int = 0) -> list[SourceSettings]:
    """The ``[[sources]]`` of the demo for databases seeded at ``dsns``
    (default: the SQLite files under ``var/demo/``), queries matched to each
    DSN's engine."""
    dsns = {**DEFAULT_DSNS, **(dsns or {})}
    sources = []
    for system in SYSTEMS:
        dialect = make_url(dsns[system]).get_backend_name()
        sources.append(SourceSettings(
            name=system, kind="sql", dsn=dsns[system], phones_query=PHONES[system],
            record_query=record_query(system, dialect), fields=list(FIELDS[system]), deadline_ms=deadline_ms,
        ))
    return sources
