"""Live orders on an exchange through ccxt: an order is committed before it is sent, sent once, and then only
ever asked about, never sent again (see docs/DESIGN.md, "A live order").

* ``types``  the order's states and their allowed transitions, the intent, the snapshot and the update events;
* ``ids``    deterministic client order ids derived from the intent (Binance's 36-character alphabet);
* ``answers`` what ccxt's answers and errors mean for an order (state, fills, fees; refused or unknown);
* ``orders`` ``OrderManager``: submit, poll / resolve, cancel on timeout, start-up after a restart.

This package imports nothing at import time (the store imports ``engine.live.types``): import the modules.
"""
