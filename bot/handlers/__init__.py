"""Command handlers, one module per command group, each with ``register(app)``.

``bot.app.build_application`` registers them all (``bot.app.HANDLER_MODULES``); the command table
(names, usage, roles) lives in ``bot.handlers.commands``.
"""
