"""The Bot API emulator's HTTP server (aiohttp) and its Python driver API.

Routes:

* ``/bot<token>/<method>`` — the Bot API (form, multipart or JSON bodies; GET query too);
* ``/file/bot<token>/<file_path>`` — downloads of files the bot uploaded;
* ``/_control/...`` — a small JSON control API so a separate process can be driven.

Faults (429, 5xx, slow responses, 403, dropped connections) are injected per method with
:attr:`BotApiEmulator.faults`; a real outage (TCP connect refused) with :meth:`go_down` /
:meth:`come_up`, which stop and restart the listener on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import structlog
from aiohttp import BodyPartReader, web

from sim.botapi.state import (
    JSON,
    ApiError,
    CallbackAnswer,
    EmulatorState,
    Params,
    SentMessage,
    UploadedFile,
)

log = structlog.get_logger("sim.botapi")

MAX_UPLOAD = 60 * 1024 * 1024
CHAT_METHODS = frozenset(
    {
        "sendmessage",
        "sendphoto",
        "senddocument",
        "sendchataction",
        "editmessagetext",
        "editmessagecaption",
        "editmessagereplymarkup",
        "deletemessage",
    }
)


class FaultKind(enum.StrEnum):
    RATE_LIMIT = "rate_limit"  # 429 with parameters.retry_after
    SERVER_ERROR = "server_error"  # 502 (or ``status``)
    TIMEOUT = "timeout"  # the response is delayed by ``delay`` seconds, then processed normally
    FORBIDDEN = "forbidden"  # 403 bot was blocked by the user (optionally only for ``chat_id``)
    DOWN = "down"  # the connection is dropped without any response


@dataclass(slots=True)
class Fault:
    method: str | None  # lower-cased Bot API method, None = any
    kind: FaultKind
    remaining: int
    retry_after: int = 3
    delay: float = 2.0
    status: int = 502
    chat_id: int | None = None

    def matches(self, method: str, chat_id: int | str | None) -> bool:
        if self.remaining <= 0 or (self.method is not None and self.method != method):
            return False
        if self.kind is FaultKind.FORBIDDEN:
            return chat_id is not None and (self.chat_id is None or self.chat_id == chat_id)
        return self.chat_id is None or self.chat_id == chat_id


class FaultInjector:
    """Queued faults, consumed by matching requests in injection order."""

    def __init__(self) -> None:
        self.pending: list[Fault] = []
        self.fired: list[tuple[str, FaultKind]] = []

    def inject(
        self,
        method: str | None,
        kind: FaultKind | str,
        *,
        times: int = 1,
        retry_after: int = 3,
        delay: float = 2.0,
        status: int = 502,
        chat_id: int | None = None,
    ) -> Fault:
        fault = Fault(
            method=method.lower() if method else None,
            kind=FaultKind(kind),
            remaining=times,
            retry_after=retry_after,
            delay=delay,
            status=status,
            chat_id=chat_id,
        )
        self.pending.append(fault)
        return fault

    def clear(self) -> None:
        self.pending.clear()

    def take(self, method: str, chat_id: int | str | None) -> Fault | None:
        for fault in self.pending:
            if fault.matches(method, chat_id):
                fault.remaining -= 1
                self.fired.append((method, fault.kind))
                if fault.remaining <= 0:
                    self.pending.remove(fault)
                return fault
        return None


class Call(NamedTuple):
    method: str  # as requested, e.g. "sendMessage"
    params: dict[str, Any]


class _Signal:
    """A broadcast wake-up: every ``notify`` wakes all current waiters."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), seconds)


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _error(err: ApiError) -> web.Response:
    return web.json_response(err.payload(), status=err.status)


async def _read_params(request: web.Request) -> Params:
    raw: dict[str, Any] = dict(request.query)
    files: dict[str, UploadedFile] = {}
    ctype = request.content_type
    if ctype == "application/json":
        body = await request.json() if request.can_read_body else {}
        if not isinstance(body, dict):
            raise ApiError(400, "Bad Request: request body must be a JSON object")
        raw.update(body)
    elif ctype == "multipart/form-data":
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            if part.filename is not None:
                data = await part.read(decode=False)
                files[part.name] = UploadedFile(bytes(data), part.filename, part.headers.get("Content-Type"))
            else:
                raw[part.name] = await part.text()
    elif request.can_read_body:
        form = await request.post()
        raw.update({k: v for k, v in form.items() if isinstance(v, str)})
    return Params(raw, files)


def _chat_of(params: Params) -> int | str | None:
    try:
        return params.chat_id() if params.has("chat_id") else None
    except ApiError:
        return None


class BotApiEmulator:
    """A local Telegram Bot API server for one bot token.

    >>> emu = BotApiEmulator(token="123456:TEST-TOKEN", bot_username="paper_agent_bot")
    >>> async with emu.run() as base_url:  # doctest: +SKIP
    ...     app = Application.builder().token(emu.token).base_url(f"{base_url}/bot")...
    """

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",
        bot_username: str = "paper_agent_bot",
        *,
        host: str = "127.0.0.1",
        strict_chats: bool = False,
    ) -> None:
        self.token = token
        self.host = host
        self.port = 0
        self.state = EmulatorState(token, bot_username, strict_chats=strict_chats)
        self.faults = FaultInjector()
        self.calls: list[Call] = []
        self._runner: web.AppRunner | None = None
        self._updates = _Signal()
        self._sent = _Signal()
        self._poll_generation = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._api: dict[str, Callable[[Params], Any]] = {
            "getme": self.state.api_get_me,
            "sendmessage": self.state.api_send_message,
            "sendphoto": self.state.api_send_photo,
            "senddocument": self.state.api_send_document,
            "getfile": self.state.api_get_file,
            "editmessagetext": self.state.api_edit_message_text,
            "editmessagecaption": self.state.api_edit_message_caption,
            "editmessagereplymarkup": self.state.api_edit_message_reply_markup,
            "deletemessage": self.state.api_delete_message,
            "answercallbackquery": self.state.api_answer_callback_query,
            "sendchataction": self.state.api_send_chat_action,
            "getchat": self.state.api_get_chat,
            "setmycommands": self.state.api_set_my_commands,
            "getmycommands": self.state.api_get_my_commands,
            "deletemycommands": self.state.api_delete_my_commands,
            "setwebhook": self.state.api_set_webhook,
            "deletewebhook": self.state.api_delete_webhook,
            "getwebhookinfo": self.state.api_get_webhook_info,
            "close": self.state.api_ok,
            "logout": self.state.api_ok,
        }

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def is_up(self) -> bool:
        return self._runner is not None

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_UPLOAD)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        app.router.add_post("/_control/send_message", self._control_send_message)
        app.router.add_post("/_control/press_button", self._control_press_button)
        app.router.add_get("/_control/transcript", self._control_transcript)
        app.router.add_post("/_control/fault", self._control_fault)
        app.router.add_post("/_control/down", self._control_down)
        app.router.add_post("/_control/block", self._control_block)
        app.router.add_get("/_control/calls", self._control_calls)
        app.router.add_get("/_control/callback_answers", self._control_callback_answers)
        app.router.add_get("/_control/commands", self._control_commands)
        return app

    async def start(self, port: int | None = None) -> str:
        """Listen on ``host:port`` (0 = a random free port); returns the base URL."""
        if self._runner is not None:
            return self.base_url
        runner = web.AppRunner(self._build_app(), access_log=None, shutdown_timeout=0.2)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port if port is None else port, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self.port = int(runner.addresses[0][1])
        self._runner = runner
        log.info("emulator.up", url=self.base_url)
        return self.base_url

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.go_down()

    async def go_down(self) -> None:
        """Stop listening and drop every open connection: connects are refused until come_up."""
        runner, self._runner = self._runner, None
        if runner is not None:
            self._updates.notify()
            await runner.cleanup()
            log.info("emulator.down", port=self.port)

    async def come_up(self) -> str:
        """Listen again on the same port after :meth:`go_down`."""
        return await self.start(self.port)

    async def outage(self, seconds: float) -> None:
        """Be down for ``seconds`` then come back up."""
        await self.go_down()
        await asyncio.sleep(seconds)
        await self.come_up()

    @contextlib.asynccontextmanager
    async def run(self, port: int = 0) -> AsyncIterator[str]:
        """Serve for the duration of the block; yields the base URL ``http://127.0.0.1:PORT``."""
        await self.start(port)
        try:
            yield self.base_url
        finally:
            await self.stop()

    # ------------------------------------------------------------------ driver API

    def send_message(
        self,
        chat_id: int,
        user_id: int,
        text: str,
        *,
        chat_type: str = "private",
        thread_id: int | None = None,
        username: str | None = None,
        first_name: str = "Ann",
        reply_to_message_id: int | None = None,
    ) -> int:
        """A user sends ``text`` to the bot; returns the update_id."""
        update_id = self.state.inject_message(
            chat_id,
            user_id,
            text,
            chat_type=chat_type,
            thread_id=thread_id,
            username=username,
            first_name=first_name,
            reply_to_message_id=reply_to_message_id,
        )
        self._updates.notify()
        return update_id

    def press_button(self, chat_id: int, user_id: int, message_id: int, callback_data: str) -> str:
        """A user presses an inline button of a bot message; returns the callback query id."""
        query_id = self.state.inject_button_press(chat_id, user_id, message_id, callback_data)
        self._updates.notify()
        return query_id

    def transcript(self, chat_id: int) -> list[SentMessage]:
        """Every message the bot sent to the chat, in order (edits applied, deletions flagged)."""
        return list(self.state.transcript(chat_id))

    def messages_since(self, chat_id: int, index: int) -> list[SentMessage]:
        return self.state.transcript(chat_id)[index:]

    def injected(self, chat_id: int) -> list[JSON]:
        """Every update the driver injected for the chat."""
        return list(self.state.injected.get(chat_id, []))

    async def wait_for_messages(
        self, chat_id: int, count: int, timeout: float = 5.0, *, since: int = 0
    ) -> list[SentMessage]:
        """Wait until the bot has sent at least ``count`` messages after index ``since``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.state.transcript(chat_id)) - since < count:
            remaining = deadline - loop.time()
            if remaining <= 0:
                texts = [m.text for m in self.state.transcript(chat_id)[since:]]
                raise TimeoutError(f"chat {chat_id}: wanted {count} messages after {since}, got {texts}")
            await self._sent.wait(remaining)
        return self.state.transcript(chat_id)[since:]

    async def wait_for_call(
        self, method: str, timeout: float = 5.0, *, since: int = 0
    ) -> Call:
        """Wait until a request for ``method`` arrives (at index >= ``since`` of :attr:`calls`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for call in self.calls[since:]:
                if call.method.lower() == method.lower():
                    return call
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"no {method} call within {timeout}s")
            await self._sent.wait(min(remaining, 0.05))

    @property
    def callback_answers(self) -> list[CallbackAnswer]:
        return list(self.state.callback_answers)

    @property
    def commands(self) -> list[JSON]:
        """The commands set for the default scope and language."""
        return list(self.state.commands_by_scope.get(('{"type": "default"}', ""), []))

    @property
    def chat_actions(self) -> list[tuple[int, str, int | None]]:
        return list(self.state.chat_actions)

    def block(self, chat_id: int) -> None:
        """The user blocks the bot: every send to the chat answers 403 until :meth:`unblock`."""
        self.state.blocked.add(chat_id)

    def unblock(self, chat_id: int) -> None:
        self.state.blocked.discard(chat_id)

    # ------------------------------------------------------------------ Bot API handler

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return _error(ApiError(401, "Unauthorized"))
        method_name = request.match_info["method"]
        method = method_name.lower()
        try:
            params = await _read_params(request)
        except ApiError as err:
            return _error(err)
        except (ValueError, UnicodeDecodeError):
            return _error(ApiError(400, "Bad Request: can't parse request body"))
        self.calls.append(Call(method_name, {**params.raw, **{k: v.data for k, v in params.files.items()}}))
        self._sent.notify()
        log.debug("emulator.call", method=method_name)
        chat_ref = _chat_of(params)
        fault = self.faults.take(method, chat_ref)
        if fault is not None:
            early = await self._apply_fault(fault, request)
            if early is not None:
                return early
        try:
            result = await self._dispatch(method, params, chat_ref)
        except ApiError as err:
            log.debug("emulator.error", method=method_name, status=err.status, description=err.description)
            return _error(err)
        return _ok(result)

    async def _apply_fault(self, fault: Fault, request: web.Request) -> web.StreamResponse | None:
        log.info("emulator.fault", kind=str(fault.kind), method=fault.method)
        if fault.kind is FaultKind.RATE_LIMIT:
            description = f"Too Many Requests: retry after {fault.retry_after}"
            return _error(ApiError(429, description, {"retry_after": fault.retry_after}))
        if fault.kind is FaultKind.SERVER_ERROR:
            return _error(ApiError(fault.status, "Bad Gateway" if fault.status == 502 else "Internal Server Error"))
        if fault.kind is FaultKind.FORBIDDEN:
            return _error(ApiError(403, "Forbidden: bot was blocked by the user"))
        if fault.kind is FaultKind.TIMEOUT:
            await asyncio.sleep(fault.delay)
            return None
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError  # nothing can be answered on an aborted connection

    async def _dispatch(self, method: str, params: Params, chat_ref: int | str | None) -> Any:
        if method == "getupdates":
            return await self._get_updates(params)
        handler = self._api.get(method)
        if handler is None:
            raise ApiError(404, "Not Found: method not found")
        if method in CHAT_METHODS and chat_ref is not None:
            self.state.check_blocked(chat_ref)
        result = handler(params)
        if method in CHAT_METHODS:
            self._sent.notify()
        return result

    async def _get_updates(self, params: Params) -> list[JSON]:
        if self.state.webhook.get("url"):
            raise ApiError(
                409, "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first"
            )
        self._poll_generation += 1
        generation = self._poll_generation
        self._updates.notify()  # an older long poll still waiting is terminated (409)
        self.state.confirm(params.get_int("offset"))
        limit = max(1, min(100, params.get_int("limit") or 100))
        timeout = max(0.0, params.get_float("timeout") or 0.0)
        allowed = params.get_json("allowed_updates") or None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = self.state.updates(limit, allowed)
            if found or loop.time() >= deadline:
                return found
            await self._updates.wait(deadline - loop.time())
            if generation != self._poll_generation:
                raise ApiError(
                    409, "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running"
                )

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return _error(ApiError(401, "Unauthorized"))
        stored = self.state.file_by_path(request.match_info["path"])
        if stored is None:
            return _error(ApiError(404, "Not Found"))
        return web.Response(body=stored.data, content_type=stored.mime_type or "application/octet-stream")

    # ------------------------------------------------------------------ control API

    @staticmethod
    async def _json_body(request: web.Request) -> JSON:
        if not request.can_read_body:
            return {}
        body = await request.json()
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="expected a JSON object")
        return body

    async def _control_send_message(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        try:
            update_id = self.send_message(
                int(body["chat_id"]),
                int(body["user_id"]),
                str(body["text"]),
                chat_type=str(body.get("chat_type", "private")),
                thread_id=body.get("thread_id"),
                username=body.get("username"),
                first_name=str(body.get("first_name", "Ann")),
            )
        except (KeyError, ValueError) as exc:
            return web.json_response({"ok": False, "description": str(exc)}, status=400)
        return _ok(update_id)

    async def _control_press_button(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        try:
            query_id = self.press_button(
                int(body["chat_id"]), int(body["user_id"]), int(body["message_id"]), str(body["callback_data"])
            )
        except (KeyError, ValueError) as exc:
            return web.json_response({"ok": False, "description": str(exc)}, status=400)
        return _ok(query_id)

    async def _control_transcript(self, request: web.Request) -> web.Response:
        chat_id = int(request.query["chat_id"])
        since = int(request.query.get("since", "0"))
        return _ok([m.to_dict() for m in self.messages_since(chat_id, since)])

    async def _control_fault(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        try:
            fault = self.faults.inject(
                body.get("method"),
                str(body["kind"]),
                times=int(body.get("times", 1)),
                retry_after=int(body.get("retry_after", 3)),
                delay=float(body.get("delay", 2.0)),
                status=int(body.get("status", 502)),
                chat_id=None if body.get("chat_id") is None else int(body["chat_id"]),
            )
        except (KeyError, ValueError) as exc:
            return web.json_response({"ok": False, "description": str(exc)}, status=400)
        return _ok({"method": fault.method, "kind": str(fault.kind), "times": fault.remaining})

    async def _control_down(self, request: web.Request) -> web.Response:
        seconds = float(request.query.get("seconds", "1"))

        async def outage() -> None:
            await asyncio.sleep(0.05)  # let this response leave first
            await self.outage(seconds)

        task = asyncio.get_running_loop().create_task(outage())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return _ok({"down_for": seconds})

    async def _control_block(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        chat_id = int(body["chat_id"])
        if body.get("blocked", True):
            self.block(chat_id)
        else:
            self.unblock(chat_id)
        return _ok(sorted(self.state.blocked))

    async def _control_calls(self, request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        calls = [
            {"method": c.method, "params": {k: v for k, v in c.params.items() if not isinstance(v, bytes)}}
            for c in self.calls[since:]
        ]
        return web.json_response({"ok": True, "result": calls}, dumps=lambda o: json.dumps(o, default=str))

    async def _control_callback_answers(self, _: web.Request) -> web.Response:
        return _ok([dataclasses.asdict(a) for a in self.state.callback_answers])

    async def _control_commands(self, _: web.Request) -> web.Response:
        return _ok(self.commands)
