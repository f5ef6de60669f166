"""A local fake exchange for tests and the offline demo: real candles, market rules and injectable faults,
spoken as Binance's spot API (the default) or OKX's v5 API, so that real ccxt runs against it unchanged.

One :class:`FakeExchange` serves in-memory candle arrays by an injected clock: only candles that have opened
(``ts <= now``) exist, and the still-open current one carries its values so far. Markets are keyed as the CSV
files name them (``BTCUSDT`` from ``BTC_USDT-5m.csv``; ``"BTC/USDT"`` works too) and split into base and quote by
the known quote assets; each exchange names them its own way (``BTCUSDT``, ``BTC-USDT``). Every market has
:class:`FakeMarketRules` (tick, step, min/max qty, min notional, trading or not), defaults by its price, and
``fake.set_rules("BTCUSDT", tick_size=0.1)`` changes them while it runs.

* ``personality="binance"`` (:mod:`sim.exchange.binance`): ``/api/v3/exchangeInfo``, ``klines``, ``ticker/24hr``,
  ``ticker``, ``ticker/price``, ``ticker/bookTicker``, ``time``, ``ping``, ``/sapi/v1/system/status``;
* ``personality="okx"`` (:mod:`sim.exchange.okx`): ``/api/v5/public/instruments``, ``market/candles``,
  ``market/history-candles``, ``market/ticker(s)``, ``public/time``, ``system/status``.

Faults are injected through :meth:`FakeExchange.inject` and consumed one per request of their endpoint (candle
requests unless ``endpoint=`` says ``"ticker"``, ``"markets"`` or ``"time"``), in the order they were injected::

    fake.inject(Fault.SERVER_ERROR, times=2)
    fake.inject(Fault.BAD_CANDLE, row=1)
    fake.inject(Fault.RATE_LIMIT, endpoint="markets")

The private half (Binance only; :mod:`sim.exchange.binance_private` over :mod:`sim.exchange.book`): accounts by
API key (``fake.add_account("key", "secret", {"USDT": 10000})``), signed requests checked as Binance does
(HMAC-SHA256, ``recvWindow`` against wall time plus ``fake.book.time_offset_ms``), ``/api/v3/account``, ``order``
(new, query, cancel), ``openOrders``, ``myTrades``, and the ``/sapi`` answers ``load_markets`` wants with keys.
MARKET orders fill at once at the ticker price (``slippage_bps``), LIMIT orders when the candles trade through
them; the ``commission`` (0.1 %) is charged in the asset received (or in ``book.fee_asset``, e.g. BNB, while the
account holds it); ``book.fill_fraction`` < 1 fills limit orders part by part. Faults for new-order requests
and for the account's reads::

    fake.inject(Fault.HANG_AFTER_ACCEPT, endpoint="order")  # also REJECT, DELAY (delay_s=), ERROR_AFTER_ACCEPT
    fake.inject(Fault.SERVER_ERROR, endpoint="account")  # balances; "open_orders" too (also TIMEOUT, MALFORMED_JSON)

``fake.set_balance("USDT", 250)``, ``fake.orders()``, ``fake.trades()`` and the HTTP ``/control/...`` API
(:mod:`sim.exchange.control`) work behind the client's back.

CLI (candle time runs ``speed`` times faster than wall time, starting ``--history`` candles after the first)::

    python -m sim.exchange --csv data/BTC_USDT-5m.csv --timeframe 5m --port 8081 --speed 60 [--personality okx] \
        [--account KEY:SECRET --balance USDT=10000 --commission 0.001 --slippage-bps 0]
"""

from sim.exchange.binance import DEFAULT_LIMIT, MAX_LIMIT
from sim.exchange.book import Balance, Book, Order, Refused, Trade
from sim.exchange.cli import load_markets, main, serve
from sim.exchange.server import PERSONALITIES, FakeExchange, FakeExchangeServer
from sim.exchange.venue import KNOWN_QUOTES, FakeMarketRules, Fault, default_rules, parse_market_key

__all__ = [
    "DEFAULT_LIMIT",
    "KNOWN_QUOTES",
    "MAX_LIMIT",
    "PERSONALITIES",
    "Balance",
    "Book",
    "FakeExchange",
    "FakeExchangeServer",
    "FakeMarketRules",
    "Fault",
    "Order",
    "Refused",
    "Trade",
    "default_rules",
    "load_markets",
    "main",
    "parse_market_key",
    "serve",
]
