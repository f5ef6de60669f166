"""Run the Bot API emulator standalone.

    python -m sim.botapi --port 8082 --token 123456:TEST-TOKEN

Point the bot at ``http://127.0.0.1:8082/bot`` (files: ``/file/bot``) and drive it with the
control API: ``POST /_control/send_message {"chat_id", "user_id", "text"}``,
``POST /_control/press_button``, ``GET /_control/transcript?chat_id=``, ``POST /_control/fault``,
``POST /_control/down?seconds=``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from sim.botapi.server import BotApiEmulator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sim.botapi", description=__doc__.split("\n")[1])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082, help="0 = a random free port")
    parser.add_argument("--token", default="123456:TEST-TOKEN")
    parser.add_argument("--username", default="paper_agent_bot", help="the bot's username")
    parser.add_argument("--strict-chats", action="store_true", help="400 'chat not found' for unseen chats")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    emu = BotApiEmulator(args.token, args.username, host=args.host, strict_chats=args.strict_chats)
    async with emu.run(args.port) as base_url:
        print(f"Bot API emulator on {base_url}  (bot API: {base_url}/bot, files: {base_url}/file/bot)", flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
