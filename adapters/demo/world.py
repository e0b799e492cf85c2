"""The content of the random demo customers, one customer at a time.

One random stream, consumed in customer order, so a seed always gives the
same rows.  A customer is one real person; each system gets its own,
drifting copy: names spelt differently ("GARCIA LOPEZ, ANA" / "Ana García"),
emails in another case or another address, phones in each system's format,
a billing account number that sales remembers only sometimes (and not always
tidily), a VIP flag one system has and another does not, balances that lag
behind the invoices, tickets only in support.  Rows go to ``out`` as
``{"system.table": [row, ...]}`` so the seed can batch them.
"""
from __future__ import annotations

import datetime as dt
import random
import uuid
from decimal import Decimal

from adapters.demo import names as N
from adapters.demo.phones import NumberPlan, Phone, billing_format, sales_format, support_format
from adapters.demo.plan import BILLING, COLLEAGUE, COMPANY, SALES, SUPPORT, Plan, picker

UTC = dt.timezone.utc
COUNTRIES = (("ES", 0.82), ("US", 0.88), ("GB", 0.92), ("FR", 0.95), ("DE", 0.97), ("SG", 0.985), ("MX", 1.0))
CURRENCY = {"US": ("USD", 0.7), "GB": ("GBP", 0.6)}
ORDER_STATUS = (("delivered", 70), ("shipped", 8), ("pending", 5), ("cancelled", 10), ("returned", 7))
FIRST_KEY = 1000  # random customers' keys start here; personas use smaller ones


class FastRandom(random.Random):
    """Float-based integer draws, two to three times faster than the exact
    ones in a loop of millions; their bias (at most n / 2**53) cannot show in
    demo data.  ``randrange`` takes a single ``stop`` here."""

    def randrange(self, stop: int) -> int:  # type: ignore[override]
        return int(self.random() * stop)

    def randint(self, a: int, b: int) -> int:
        return a + int(self.random() * (b - a + 1))

    def choice(self, seq):
        return seq[int(self.random() * len(seq))]


def money(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def catalog(seed: int) -> list[dict]:
    rng = random.Random(f"screenpop-catalog-{seed}")
    rows = []
    for pid in range(1, 201):
        kind, low, high = N.PRODUCT_KINDS[(pid - 1) % len(N.PRODUCT_KINDS)]
        brand = N.PRODUCT_BRANDS[rng.randrange(len(N.PRODUCT_BRANDS))]
        cents = rng.randint(low * 100, high * 100) // 10 * 10 - 1  # x.x9 prices
        rows.append(dict(product_id=pid, sku=f"SKU-{pid:05d}", name=f"{kind} {brand} {rng.randint(100, 999)}", unit_price=money(cents)))
    return rows


class World:
    def __init__(self, plan: Plan, seed: int, today: dt.date, products: list[dict], night: dt.datetime):
        self.plan = plan
        self.rng = FastRandom(f"screenpop-world-{seed}")
        self.numbers = NumberPlan()
        self.night = int(night.timestamp())
        self.today = today
        self.prices = [(p["product_id"], int(p["unit_price"] * 100)) for p in products]
        self.order_status = picker(tuple(w for _, w in ORDER_STATUS), self.rng)
        self.next_id = {"order": FIRST_KEY, "invoice": FIRST_KEY, "payment": FIRST_KEY, "ticket": FIRST_KEY, "update": FIRST_KEY}
        self.previous: tuple[str | None, Phone | None] = (None, None)  # company and switchboard of customer i-1

    def _id(self, kind: str) -> int:
        value = self.next_id[kind]
        self.next_id[kind] = value + 1
        return value

    def _ts(self, days_ago_max: int, days_ago_min: int = 0) -> int:
        return self.night - self.rng.randint(days_ago_min * 86400, days_ago_max * 86400)

    # ------------------------------------------------------------ customer

    def customer(self, i: int, out: dict[str, list[dict]]) -> None:
        rng, plan = self.rng, self.plan
        flags = plan.flags[i]
        r = rng.random()
        country = next(c for c, p in COUNTRIES if r < p)
        if country == "ES":
            first = N.FIRST_ES[rng.randrange(len(N.FIRST_ES))]
            surnames = [N.LAST_ES[rng.randrange(len(N.LAST_ES))], N.LAST_ES[rng.randrange(len(N.LAST_ES))]]
        else:
            first = N.FIRST_INTL[rng.randrange(len(N.FIRST_INTL))]
            surnames = [N.LAST_INTL[rng.randrange(len(N.LAST_INTL))]]
        if rng.random() < 0.002:
            first = N.HOSTILE_NAMES[rng.randrange(len(N.HOSTILE_NAMES))]
        company, land = self.previous if flags & COLLEAGUE else (None, None)
        if flags & COMPANY and company is None:
            company = self._company(country, surnames[0])
        if land is None and (flags & COMPANY or rng.random() < 0.45):
            land = self.numbers.new(country, mobile=False)
        mobile = self.numbers.new(country, mobile=True) if land is None or rng.random() < 0.55 else None
        self.previous = (company, land) if flags & COMPANY else (None, None)
        email = self._email(first, surnames[0], company, i)
        person = (i, country, first, surnames, company, email, land, mobile)
        if flags & SALES:
            self._sales(person, out)
        if flags & BILLING:
            self._billing(person, out)
        if flags & SUPPORT:
            self._support(person, out)

    def _company(self, country: str, surname: str) -> str:
        rng = self.rng
        word = N.COMPANY_WORDS[rng.randrange(len(N.COMPANY_WORDS))]
        if country == "ES":
            return f"{word} {surname} {N.COMPANY_SUFFIX[rng.randrange(len(N.COMPANY_SUFFIX))]}"
        return f"{surname} {N.COMPANY_SUFFIX_INTL[rng.randrange(len(N.COMPANY_SUFFIX_INTL))]}"

    def _email(self, first: str, surname: str, company: str | None, i: int) -> str | None:
        rng = self.rng
        if rng.random() < 0.06:
            return None
        local = f"{N.ascii_fold(first)}.{N.ascii_fold(surname)}".lower()
        local = "".join(c for c in local if c.isalnum() or c == ".") + (str(i) if rng.random() < 0.5 else "")
        if company and rng.random() < 0.7:
            slug = "".join(c for c in N.ascii_fold(company).lower() if c.isalnum())[:24]
            return f"{local}@{slug}.example"
        return f"{local}@{N.MAIL_DOMAINS[rng.randrange(len(N.MAIL_DOMAINS))]}"

    # --------------------------------------------------------------- sales

    def _sales(self, person, out) -> None:
        i, country, first, surnames, company, email, land, mobile = person
        rng, key = self.rng, FIRST_KEY + i
        last = " ".join(surnames) if rng.random() < 0.5 else surnames[0]
        first_name = first if rng.random() > 0.02 else None
        if rng.random() < 0.03:
            first_name, last = (first_name or "").upper() or None, last.upper()
        phone = sales_format(land, rng) if land else None
        mob = sales_format(mobile, rng) if mobile else None
        if phone is None and rng.random() < 0.5:
            phone, mob = mob, None  # the mobile typed into the phone field
        account = None
        if self.plan.flags[i] & BILLING and rng.random() < 0.65:
            account = f"AC-{key:06d}"
            r = rng.random()
            if r < 0.04:
                account = account.lower()
            elif r < 0.07:
                account = f" {account} "
            elif r < 0.08:
                account = f"AC-{9_000_000 + i:07d}"  # points at an account that does not exist
        since = self.today - dt.timedelta(days=rng.randint(30, 3650))
        since_ts = int(dt.datetime.combine(since, dt.time(12), tzinfo=UTC).timestamp())
        ltv = 0
        orders = out["sales.orders"]
        for _ in range(self.plan.orders[i]):
            pid, price = self.prices[rng.randrange(len(self.prices))]
            qty = 1 if rng.random() < 0.85 else rng.randint(2, 3)
            total = price * qty * (9 if rng.random() < 0.1 else 10) // 10
            status = ORDER_STATUS[self.order_status()][0]
            if status not in ("cancelled", "returned"):
                ltv += total
            at = rng.randint(since_ts, self.night)
            orders.append(dict(order_id=self._id("order"), customer_id=key, product_id=pid, quantity=qty,
                               total=money(total), currency="EUR", status=status,
                               ordered_at=dt.datetime.fromtimestamp(at, UTC)))
        if rng.random() < 0.04:
            ltv = ltv * 7 // 10  # the nightly job missed the last orders
        notes = None
        r = rng.random()
        if r < 0.003:
            notes = N.HOSTILE_NOTE
        elif r < 0.1:
            notes = rng.choice(("Prefiere email.", "Cliente desde la tienda de Sol.", "No llamar en agosto.", "Pide factura a nombre de empresa."))
        out["sales.customers"].append(dict(
            customer_id=key, first_name=first_name, last_name=last, company=company,
            email=email if rng.random() > 0.03 else None, phone=phone, mobile=mob, billing_account=account,
            vip=rng.random() < 0.02, lifetime_value=money(ltv), customer_since=since, notes=notes))

    # ------------------------------------------------------------- billing

    def _billing(self, person, out) -> None:
        i, country, first, surnames, company, email, land, mobile = person
        rng, plan = self.rng, self.plan
        account = f"AC-{FIRST_KEY + i:06d}"
        r = rng.random()
        if company and r < 0.3:
            holder = company.upper()
        elif r < 0.55:
            holder = f"{N.ascii_fold(' '.join(surnames)).upper()}, {N.ascii_fold(first).upper()}"
        elif r < 0.65:
            holder = f"{surnames[0]} {first}"
        else:
            holder = f"{first} {' '.join(surnames)}"
        r = rng.random()
        if email and r < 0.2:
            email = ".".join(part.capitalize() for part in email.split("."))
        elif email and r < 0.25:
            email = f" {email} "
        elif r < 0.35:
            email = None
        primary, second = (land, mobile) if land else (mobile, None)
        code, share = CURRENCY.get(country, ("EUR", 0))
        currency = code if rng.random() < share else "EUR"
        invoices, payments = out["billing.invoices"], out["billing.payments"]
        balance = overdue = 0
        unpaid = plan.unpaid[i]
        offset = rng.randint(1, 28)
        for k in range(plan.invoices[i]):
            issued = self.today - dt.timedelta(days=30 * k + offset)
            due = issued + dt.timedelta(days=30)
            cents = rng.randint(1500, 30000)
            number = f"INV-{issued.year}-{self._id('invoice'):07d}"
            if k < unpaid:
                status = "overdue" if due < self.today else "open"
                balance += cents
                overdue += cents if status == "overdue" else 0
            else:
                status = "paid"
                paid = dt.datetime.combine(due, dt.time(9), tzinfo=UTC) - dt.timedelta(days=rng.randint(-5, 25))
                payments.append(dict(payment_id=self._id("payment"), account_no=account, invoice_no=number, paid_at=paid,
                                     amount=money(cents), method=rng.choice(("direct_debit", "card", "transfer"))))
            invoices.append(dict(invoice_no=number, account_no=account, issued_on=issued, due_on=due, amount=money(cents), status=status))
        as_of = self.night
        r = rng.random()
        if r < 0.05:
            as_of -= rng.randint(2, 6) * 86400  # snapshot stale: the nightly run failed for this account
            balance = max(0, balance - rng.randint(1000, 9000))
        elif r < 0.07:
            balance, overdue = -rng.randint(500, 5000), 0  # credit after a refund
        status = "suspended" if overdue and rng.random() < 0.3 else ("closed" if rng.random() < 0.03 else "active")
        out["billing.accounts"].append(dict(
            account_no=account, holder_name=holder, email=email,
            phone=billing_format(primary, rng),
            phone_alt=billing_format(second, rng) if second and rng.random() < 0.6 else None,
            currency=currency, balance=money(balance), overdue_amount=money(overdue),
            balance_as_of=dt.datetime.fromtimestamp(as_of, UTC), status=status,
            opened_on=self.today - dt.timedelta(days=rng.randint(60, 4000))))

    # ------------------------------------------------------------- support

    def _support(self, person, out) -> None:
        i, country, first, surnames, company, email, land, mobile = person
        rng = self.rng
        contact_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        r = rng.random()
        full = f"{first} {' '.join(surnames)}"
        name = None if r < 0.03 else full.lower() if r < 0.13 else full.replace(" ", "  ", 1) if r < 0.18 else full
        r = rng.random()
        if email and r < 0.08:
            email = email.upper()
        elif r < 0.20:
            email = f"{N.ascii_fold(first).lower()}{rng.randint(1, 99)}@{N.MAIL_DOMAINS[rng.randrange(len(N.MAIL_DOMAINS))]}"
        elif r < 0.25:
            email = None
        primary, second = (mobile, land) if mobile and rng.random() < 0.5 else ((land, mobile) if land else (mobile, None))
        r = rng.random()
        tier = "vip" if r < 0.02 else "premium" if r < 0.12 else "standard"
        created = self._ts(1500, 30)
        r = rng.random()
        notes = N.HOSTILE_NOTE if r < 0.003 else ("Cliente sensible a retrasos." if r < 0.05 else None)
        out["support.contacts"].append(dict(
            contact_id=contact_id, full_name=name, email=email, phone=support_format(primary, rng),
            phone_alt=support_format(second, rng) if second and rng.random() < 0.5 else None,
            organization=company.rsplit(" ", 1)[0] if company and rng.random() < 0.8 else None,
            sla_tier=tier, created_at=dt.datetime.fromtimestamp(created, UTC), notes=notes))
        counts = self.plan.ticket_updates(i)
        for t, n_updates in enumerate(counts):
            latest = t == len(counts) - 1
            is_open = latest and rng.random() < 0.35
            opened = self._ts(20, 1) if is_open else self._ts(700, 21)
            ticket_id = self._id("ticket")
            at = opened
            for _ in range(n_updates):
                at = min(self.night, at + rng.randint(600, 3 * 86400))
                out["support.ticket_updates"].append(dict(
                    update_id=self._id("update"), ticket_id=ticket_id, at=dt.datetime.fromtimestamp(at, UTC),
                    author=N.AGENTS[rng.randrange(len(N.AGENTS))],
                    body=N.UPDATE_BODIES[rng.randrange(len(N.UPDATE_BODIES))], public=rng.random() < 0.7))
            out["support.tickets"].append(dict(
                ticket_id=ticket_id, contact_id=contact_id,
                subject=N.TICKET_SUBJECTS[rng.randrange(len(N.TICKET_SUBJECTS))],
                status=(rng.choice(("open", "pending")) if is_open else rng.choice(("solved", "closed"))),
                priority=rng.choice(("low", "normal", "normal", "high", "urgent")),
                channel=rng.choice(("phone", "phone", "email", "web", "chat")),
                opened_at=dt.datetime.fromtimestamp(opened, UTC), updated_at=dt.datetime.fromtimestamp(at, UTC)))
