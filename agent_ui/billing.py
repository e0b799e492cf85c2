"""HTTP edge of the billing push: ``PUT /api/v1/billing/balances/{account}``.

Thin on purpose: authenticate, parse (customer_lookup.balances does the
validation), store, then let the lookup side patch cached cards and open
pops.  A refused payload changes nothing; an outage of the balance store is
a 503, never a half-written balance."""
from __future__ import annotations

import logging
from typing import Awaitable, Callable

from aiohttp import web

from agent_ui.jsonio import BadRequest, json_error, read_json_object
from agent_ui.tokens import BearerTokens
from customer_lookup.balances import InvalidBalance, PushedBalance, parse_balance

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024
ROUTE = "/api/v1/billing/balances/{account}"

OnBalance = Callable[[PushedBalance], Awaitable[int]]


def setup(app: web.Application, *, tokens: BearerTokens, balances, on_balance: OnBalance) -> None:
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
            return json_error(400, str(exc))
        try:
            await balances.put(balance)
        except Exception as exc:
            log.error("billing push failed account=%s reason=%s", account, exc)
            return json_error(503, "balance store unavailable, retry later", **{"Retry-After": "5"})
        try:
            updated = await on_balance(balance)
        except Exception:
            log.exception("billing push stored but cards not refreshed account=%s", account)
            updated = 0
        identify = getattr(tokens, "identify", None)  # the token's name (never the token), when the tokens have names
        log.info("billing push account=%s balance=%s currency=%s cards_updated=%d token=%s", account, balance.balance,
                 balance.currency, updated, identify(authorization) if identify else "-")
        return web.json_response({"account": account, "balance": balance.balance, "currency": balance.currency, "as_of": balance.as_of, "cards_updated": updated})

    app.router.add_put(ROUTE, put_balance)
