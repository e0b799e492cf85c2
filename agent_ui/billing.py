"""HTTP edge of the billing push: ``PUT /api/v1/billing/balances/{account}``.

Thin on purpose: authenticate, parse (customer_lookup.balances does the
validation and says which accounts exist), store, then let the lookup side
patch cached cards and open pops.  The answers: 200 stored; 400 a malformed
body; 422 a currency that is not ISO 4217 or not the account's; 404 an
account no billing source knows and no balance was stored for; 409 an
``as_of`` older than the stored balance's; 503 the balance store or every
billing source unreachable.  A refused push changes nothing.

Pushes for one account are handled one at a time in this process, store and
card patch together, so two pushes in flight cannot patch the cards in the
wrong order; between nodes the store's check-and-set keeps the newer one."""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from aiohttp import web

from agent_ui.jsonio import BadRequest, json_error, read_json_object
from agent_ui.tokens import BearerTokens
from customer_lookup.balances import Account, AccountCheckFailed, InvalidBalance, PushedBalance, parse_balance

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024
ROUTE = "/api/v1/billing/balances/{account}"

OnBalance = Callable[[PushedBalance], Awaitable[int]]
FindAccount = Callable[[str], Awaitable[Account | None]]


class _AccountLocks:
    """One lock per account with a push in flight (dropped when none is)."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    async def __call__(self, account: str, work: Callable[[], Awaitable[web.Response]]) -> web.Response:
        lock, users = self._locks.get(account, (None, 0))
        lock = lock or asyncio.Lock()
        self._locks[account] = (lock, users + 1)
        try:
            async with lock:
                return await work()
        finally:
            lock, users = self._locks[account]
            if users <= 1:
                del self._locks[account]
            else:
                self._locks[account] = (lock, users - 1)


def setup(app: web.Application, *, tokens: BearerTokens, balances, on_balance: OnBalance,
          find_account: FindAccount | None = None) -> None:
    """``find_account``: the account as the billing sources know it
    (:func:`customer_lookup.balances.find_account`); None takes every account."""
    one_at_a_time = _AccountLocks()

    async def put_balance(request: web.Request) -> web.Response:
        authorization = request.headers.get("Authorization")
        if not tokens.check(authorization):
            log.warning("billing push refused reason=bad-token remote=%s", request.remote)
            return json_error(401, "a valid bearer token is required", **{"WWW-Authenticate": 'Bearer realm="billing"'})
        try:
            payload = await read_json_object(request, max_bytes=MAX_BODY, what="the balance")
        except BadRequest as exc:
            return json_error(exc.status, str(exc))
        account = request.match_info["account"]
        try:
            balance = parse_balance(account, payload)
        except InvalidBalance as exc:
            return json_error(exc.status, str(exc))
        identify = getattr(tokens, "identify", None)  # the token's name (never the token), when the tokens have names
        token_name = identify(authorization) if identify else "-"
        return await one_at_a_time(account, lambda: _store(balance, token_name))

    async def _store(balance: PushedBalance, token_name: str) -> web.Response:
        account = balance.account
        try:
            known = await find_account(account) if find_account is not None else Account(account, None, "unchecked")
        except AccountCheckFailed as exc:
            log.warning("billing push refused reason=account-check-failed account=%s detail=%r", account, str(exc))
            return json_error(503, "cannot tell whether the account exists now, retry later", **{"Retry-After": "5"})
        except Exception as exc:
            log.error("billing push failed account=%s reason=%s", account, type(exc).__name__)
            return json_error(503, "balance store unavailable, retry later", **{"Retry-After": "5"})
        if known is None:
            log.warning("billing push refused reason=unknown-account account=%s token=%s", account, token_name)
            return json_error(404, f"no billing account {account}")
        if known.currency and known.currency != balance.currency:
            log.warning("billing push refused reason=currency account=%s currency=%s expected=%s token=%s", account,
                        balance.currency, known.currency, token_name)
            return json_error(422, f"account {account} is kept in {known.currency}, not {balance.currency}")
        try:
            newer = await balances.put(balance)
        except Exception as exc:
            log.error("billing push failed account=%s reason=%s", account, type(exc).__name__)
            return json_error(503, "balance store unavailable, retry later", **{"Retry-After": "5"})
        if newer is not None:
            log.warning("billing push refused reason=older account=%s as_of=%s stored_as_of=%s token=%s", account,
                        balance.as_of, newer.as_of, token_name)
            return web.json_response({"error": f"a newer balance is stored (as of {newer.as_of}); this one is as of {balance.as_of}",
                                      "stored_as_of": newer.as_of}, status=409)
        try:
            updated = await on_balance(balance)
        except Exception:
            log.exception("billing push stored but cards not refreshed account=%s", account)
            updated = 0
        log.info("billing push account=%s balance=%s currency=%s cards_updated=%d token=%s", account, balance.balance,
                 balance.currency, updated, token_name)
        return web.json_response({"account": account, "balance": balance.balance, "currency": balance.currency,
                                  "as_of": balance.as_of, "cards_updated": updated})

    app.router.add_put(ROUTE, put_balance)
