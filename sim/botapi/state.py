"""In-memory state of the Bot API emulator: chats, transcripts, pending updates, files.

Everything here is synchronous and transport-free: :class:`EmulatorState` implements the
semantics of the Bot API methods (``api_*``), taking decoded :class:`Params` and returning the
JSON-ready ``result`` or raising :class:`ApiError`. The aiohttp layer (``server.py``) only
decodes requests, injects faults, long-polls and serialises.

Text formatting follows Telegram: ``parse_mode`` HTML / MarkdownV2 / Markdown is parsed into
plain text plus entities (offsets in UTF-16 code units), malformed markup is a 400
``can't parse entities``, and the 4096-character limit applies to the plain text.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

MAX_TEXT = 4096
MAX_CAPTION = 1024


class ApiError(Exception):
    """A Bot API error response: ``{"ok": false, "error_code": status, "description": ...}``."""

    def __init__(self, status: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def payload(self) -> JSON:
        body: JSON = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(what: str) -> ApiError:
    return ApiError(400, f"Bad Request: {what}")


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(src: str, index: int) -> int:
    return len(src[:index].encode("utf-8"))


# --------------------------------------------------------------------------- wire parameters


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """One multipart file part."""

    data: bytes
    filename: str | None
    content_type: str | None


class Params:
    """Typed access to one request's parameters.

    PTB sends form fields where every non-string value is JSON-encoded (``"123"``, ``"true"``,
    ``'{"inline_keyboard": ...}'``); a JSON body carries native values. Both are accepted.
    """

    def __init__(self, raw: Mapping[str, Any], files: Mapping[str, UploadedFile] | None = None) -> None:
        self.raw: dict[str, Any] = dict(raw)
        self.files: dict[str, UploadedFile] = dict(files or {})

    def has(self, name: str) -> bool:
        return self.raw.get(name) is not None or name in self.files

    def get_str(self, name: str) -> str | None:
        value = self.raw.get(name)
        if value is None:
            return None
        return value if isinstance(value, str) else json.dumps(value)

    def get_int(self, name: str) -> int | None:
        value = self.raw.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            raise bad_request(f"invalid {name} specified")
        if isinstance(value, int):
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            raise bad_request(f"invalid {name} specified") from None

    def get_float(self, name: str) -> float | None:
        value = self.raw.get(name)
        if value is None or value == "":
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad_request(f"invalid {name} specified") from None

    def get_bool(self, name: str) -> bool:
        value = self.raw.get(name)
        if isinstance(value, str):
            return value.strip().lower() in {"true", "1"}
        return bool(value)

    def get_json(self, name: str) -> Any:
        value = self.raw.get(name)
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise bad_request(f"can't parse {name} JSON object") from None
        return value

    def chat_id(self, name: str = "chat_id") -> int | str:
        value = self.raw.get(name)
        if value is None or value == "":
            raise bad_request("chat_id is empty")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        text = str(value).strip()
        if re.fullmatch(r"-?\d+", text):
            return int(text)
        return text

    def required_int(self, name: str, what: str | None = None) -> int:
        value = self.get_int(name)
        if value is None:
            raise bad_request(what or f"{name} is empty")
        return value


# --------------------------------------------------------------------------- text formatting


_HTML_SIMPLE = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
}
_HTML_TAGS = frozenset(_HTML_SIMPLE) | {"a", "span", "tg-emoji"}
_HTML_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY_RE = re.compile(r"&(?:#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6})|([a-zA-Z]{2,8}));")
_NAME_RE = re.compile(r"[a-zA-Z0-9-]*")
_ATTR_RE = re.compile(r"[a-zA-Z0-9_-]*")


def _entities_error(message: str) -> ApiError:
    return bad_request(f"can't parse entities: {message}")


@dataclass(slots=True)
class _OpenTag:
    name: str
    attrs: dict[str, str]
    start: int  # UTF-16 offset in the plain text
    language: str | None = None


class _TextBuilder:
    """Accumulates plain text and its UTF-16 length."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.u16 = 0

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.u16 += utf16_len(text)

    def text(self) -> str:
        return "".join(self.parts)


def _decode_html_entity(src: str, i: int) -> tuple[str, int]:
    match = _ENTITY_RE.match(src, i)
    if match is not None:
        dec, hexa, name = match.groups()
        if name is not None and name in _HTML_NAMED:
            return _HTML_NAMED[name], match.end()
        if dec is not None or hexa is not None:
            code = int(dec) if dec is not None else int(hexa, 16)
            if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
                return chr(code), match.end()
    raise _entities_error(
        f"Unsupported HTML entity or unescaped '&' at byte offset {_byte_offset(src, i)}; "
        "escape '&' as &amp;"
    )


def _parse_html_attrs(src: str, j: int, tag: str, tag_at: int) -> tuple[dict[str, str], int]:
    attrs: dict[str, str] = {}
    n = len(src)
    while True:
        while j < n and src[j].isspace():
            j += 1
        if j >= n:
            raise _entities_error(f"Unclosed start tag at byte offset {_byte_offset(src, tag_at)}")
        if src[j] == ">":
            return attrs, j + 1
        name_match = _ATTR_RE.match(src, j)
        assert name_match is not None
        name = name_match.group().lower()
        if not name:
            raise _entities_error(
                f'Expected equal sign in declaration of an attribute of the tag "{tag}" '
                f"at byte offset {_byte_offset(src, tag_at)}"
            )
        j = name_match.end()
        while j < n and src[j].isspace():
            j += 1
        value = ""
        if j < n and src[j] == "=":
            j += 1
            while j < n and src[j].isspace():
                j += 1
            if j < n and src[j] in "\"'":
                end = src.find(src[j], j + 1)
                if end < 0:
                    raise _entities_error(
                        f"Unclosed start tag at byte offset {_byte_offset(src, tag_at)}"
                    )
                value, j = src[j + 1 : end], end + 1
            else:
                start = j
                while j < n and not src[j].isspace() and src[j] != ">":
                    j += 1
                value = src[start:j]
            value = re.sub(r"&(lt|gt|amp|quot);", lambda m: _HTML_NAMED[m.group(1)], value)
        attrs[name] = value


def _close_html_tag(tag: _OpenTag, end: int, stack: list[_OpenTag], entities: list[JSON]) -> None:
    length = end - tag.start
    if tag.name == "code" and stack and stack[-1].name == "pre":
        cls = tag.attrs.get("class", "")
        if cls.startswith("language-") and length > 0:
            stack[-1].language = cls[len("language-") :]
            return
    if length <= 0:
        return
    entity: JSON = {"offset": tag.start, "length": length}
    if tag.name == "a":
        href = tag.attrs.get("href", "")
        if not href:
            return
        entity.update(type="text_link", url=href)
    elif tag.name == "span":
        entity["type"] = "spoiler"
    elif tag.name == "tg-emoji":
        entity.update(type="custom_emoji", custom_emoji_id=tag.attrs["emoji-id"])
    elif tag.name == "blockquote" and "expandable" in tag.attrs:
        entity["type"] = "expandable_blockquote"
    else:
        entity["type"] = _HTML_SIMPLE[tag.name]
        if tag.name == "pre" and tag.language:
            entity["language"] = tag.language
    entities.append(entity)


def _check_start_tag(name: str, attrs: dict[str, str], src: str, at: int) -> None:
    if name not in _HTML_TAGS:
        raise _entities_error(f'Unsupported start tag "{name}" at byte offset {_byte_offset(src, at)}')
    if name == "span" and attrs.get("class") != "tg-spoiler":
        raise _entities_error('Tag "span" must have class "tg-spoiler"')
    if name == "tg-emoji" and not attrs.get("emoji-id", "").isdigit():
        raise _entities_error("Custom emoji entity must contain a valid custom emoji identifier")


def parse_html(src: str) -> tuple[str, list[JSON]]:
    """Telegram's HTML parse mode: returns the plain text and its entities (unstripped)."""
    out = _TextBuilder()
    stack: list[_OpenTag] = []
    entities: list[JSON] = []
    i, n = 0, len(src)
    while i < n:
        char = src[i]
        if char == "&":
            decoded, i = _decode_html_entity(src, i)
            out.add(decoded)
            continue
        if char != "<":
            nxt = src.find("<", i)
            amp = src.find("&", i)
            stop = min(x for x in (nxt, amp, n) if x >= 0)
            out.add(src[i:stop])
            i = stop
            continue
        at = i
        if src.startswith("</", i):
            name_match = _NAME_RE.match(src, i + 2)
            assert name_match is not None
            name, j = name_match.group().lower(), name_match.end()
            while j < n and src[j].isspace():
                j += 1
            if j >= n or src[j] != ">":
                raise _entities_error(f"Unclosed end tag at byte offset {_byte_offset(src, at)}")
            if not stack:
                raise _entities_error(f"Unexpected end tag at byte offset {_byte_offset(src, at)}")
            if stack[-1].name != name:
                raise _entities_error(
                    f"Unmatched end tag at byte offset {_byte_offset(src, at)}, "
                    f'expected "</{stack[-1].name}>", found "</{name}>"'
                )
            _close_html_tag(stack.pop(), out.u16, stack, entities)
            i = j + 1
            continue
        name_match = _NAME_RE.match(src, i + 1)
        assert name_match is not None
        name = name_match.group().lower()
        if name not in _HTML_TAGS:
            raise _entities_error(
                f'Unsupported start tag "{name}" at byte offset {_byte_offset(src, at)}'
            )
        attrs, i = _parse_html_attrs(src, name_match.end(), name, at)
        _check_start_tag(name, attrs, src, at)
        stack.append(_OpenTag(name, attrs, out.u16))
    if stack:
        raise _entities_error(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    return out.text(), entities


_MDV2_RESERVED = set("_*[]()~`>#+-=|{}.!")
_MDV2_MARKS = {"*": "bold", "_": "italic", "__": "underline", "~": "strikethrough", "||": "spoiler"}


def _mdv2_mark_at(src: str, i: int) -> str | None:
    for mark in ("__", "||", "*", "_", "~"):
        if src.startswith(mark, i):
            return mark
    return None


def _mdv2_code(src: str, i: int, out: _TextBuilder, entities: list[JSON]) -> int:
    """Parse a `code` or ```pre``` span starting at ``i``; returns the index after it."""
    fence = "```" if src.startswith("```", i) else "`"
    j = i + len(fence)
    language = None
    if fence == "```":
        newline = src.find("\n", j)
        first = src[j:newline] if newline >= 0 else ""
        if newline >= 0 and re.fullmatch(r"[a-zA-Z0-9_+#-]*", first):
            language = first or None
            j = newline + 1
    start = out.u16
    chunk: list[str] = []
    while j < len(src):
        if src[j] == "\\" and j + 1 < len(src) and src[j + 1] in "`\\":
            chunk.append(src[j + 1])
            j += 2
            continue
        if src.startswith(fence, j):
            out.add("".join(chunk))
            entity: JSON = {"type": "pre" if fence == "```" else "code", "offset": start}
            entity["length"] = out.u16 - start
            if language:
                entity["language"] = language
            if entity["length"] > 0:
                entities.append(entity)
            return j + len(fence)
        chunk.append(src[j])
        j += 1
    kind = "Pre" if fence == "```" else "Code"
    raise _entities_error(f"Can't find end of {kind} entity at byte offset {_byte_offset(src, i)}")


def parse_markdown_v2(src: str) -> tuple[str, list[JSON]]:
    """Telegram's MarkdownV2: reserved characters must be escaped; entities must be closed."""
    out = _TextBuilder()
    entities: list[JSON] = []
    stack: list[tuple[str, int, int]] = []  # (mark, utf16 start, src index)
    links: list[tuple[int, int]] = []  # (utf16 start, src index) of open '['
    i, n = 0, len(src)
    while i < n:
        char = src[i]
        if char == "\\" and i + 1 < n and 0 < ord(src[i + 1]) < 127:
            out.add(src[i + 1])
            i += 2
            continue
        if char == "`":
            i = _mdv2_code(src, i, out, entities)
            continue
        mark = _mdv2_mark_at(src, i)
        if mark is not None:
            if stack and stack[-1][0] == mark:
                _, start, _ = stack.pop()
                if out.u16 > start:
                    entities.append({"type": _MDV2_MARKS[mark], "offset": start, "length": out.u16 - start})
            else:
                stack.append((mark, out.u16, i))
            i += len(mark)
            continue
        if char == "[":
            links.append((out.u16, i))
            i += 1
            continue
        if char == "]" and links:
            start, _ = links.pop()
            close = src.find(")", i)
            if not src.startswith("(", i + 1) or close < 0:
                raise _entities_error(f"Can't find end of a url at byte offset {_byte_offset(src, i)}")
            url = src[i + 2 : close].replace("\\)", ")").replace("\\\\", "\\")
            if out.u16 > start:
                entities.append({"type": "text_link", "offset": start, "length": out.u16 - start, "url": url})
            i = close + 1
            continue
        if char == ">" and (i == 0 or src[i - 1] == "\n"):
            i += 1  # blockquote marker; the quote entity itself is not modelled
            continue
        if char in _MDV2_RESERVED:
            raise _entities_error(
                f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
            )
        out.add(char)
        i += 1
    if stack:
        mark, _, at = stack[-1]
        kind = _MDV2_MARKS[mark].capitalize()
        raise _entities_error(f"Can't find end of {kind} entity at byte offset {_byte_offset(src, at)}")
    if links:
        raise _entities_error(f"Can't find end of TextUrl entity at byte offset {_byte_offset(src, links[-1][1])}")
    return out.text(), entities


def parse_markdown(src: str) -> tuple[str, list[JSON]]:
    """Legacy Markdown: *bold*, _italic_, `code`, ```pre```, [text](url)."""
    out = _TextBuilder()
    entities: list[JSON] = []
    kinds = {"*": "bold", "_": "italic"}
    i, n = 0, len(src)
    while i < n:
        char = src[i]
        if char == "\\" and i + 1 < n and src[i + 1] in "*_`[":
            out.add(src[i + 1])
            i += 2
        elif char in kinds or char == "`":
            fence = "```" if src.startswith("```", i) else char
            end = src.find(fence, i + len(fence))
            if end < 0:
                raise _entities_error(
                    f"Can't find end of the entity starting at byte offset {_byte_offset(src, i)}"
                )
            start = out.u16
            out.add(src[i + len(fence) : end])
            kind = kinds.get(char, "pre" if fence == "```" else "code")
            if out.u16 > start:
                entities.append({"type": kind, "offset": start, "length": out.u16 - start})
            i = end + len(fence)
        elif char == "[":
            match = re.compile(r"\[([^\]]*)\]\(([^)]*)\)").match(src, i)
            if match is None:
                raise _entities_error(
                    f"Can't find end of the entity starting at byte offset {_byte_offset(src, i)}"
                )
            start = out.u16
            out.add(match.group(1))
            if out.u16 > start:
                entities.append(
                    {"type": "text_link", "offset": start, "length": out.u16 - start, "url": match.group(2)}
                )
            i = match.end()
        else:
            out.add(char)
            i += 1
    return out.text(), entities


def _strip_text(text: str, entities: list[JSON]) -> tuple[str, list[JSON]]:
    """Strip surrounding whitespace like Telegram, shifting and clipping entities."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    lead = utf16_len(text[: len(text) - len(text.lstrip())])
    total = utf16_len(stripped)
    result: list[JSON] = []
    for entity in entities:
        start = max(0, entity["offset"] - lead)
        end = min(total, entity["offset"] + entity["length"] - lead)
        if end > start:
            result.append({**entity, "offset": start, "length": end - start})
    return stripped, result


def format_text(
    raw: str | None,
    parse_mode: str | None,
    entities: list[JSON] | None,
    *,
    limit: int,
    caption: bool = False,
) -> tuple[str, list[JSON]]:
    """Validate and parse a text or caption; returns the plain text and sorted entities."""
    if raw is None or raw.strip() == "":
        if caption:
            return "", []
        raise bad_request("message text is empty")
    mode = (parse_mode or "").strip().lower()
    if entities is not None or not mode:
        text, found = raw, list(entities or [])
    elif mode == "html":
        text, found = parse_html(raw)
    elif mode == "markdownv2":
        text, found = parse_markdown_v2(raw)
    elif mode == "markdown":
        text, found = parse_markdown(raw)
    else:
        raise bad_request("unsupported parse_mode")
    text, found = _strip_text(text, found)
    if not text and not caption:
        raise bad_request("message text is empty")
    if len(text) > limit:
        raise bad_request("message caption is too long" if caption else "message is too long")
    found.sort(key=lambda e: (e["offset"], -e["length"]))
    return text, found


# --------------------------------------------------------------------------- records


@dataclass(slots=True)
class ChatInfo:
    id: int
    type: str
    title: str | None = None
    username: str | None = None
    first_name: str | None = None
    is_forum: bool = False

    def to_api(self) -> JSON:
        data: JSON = {"id": self.id, "type": self.type}
        for key in ("title", "username", "first_name"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        if self.is_forum:
            data["is_forum"] = True
        return data


@dataclass(slots=True)
class StoredFile:
    file_id: str
    file_unique_id: str
    data: bytes
    file_path: str
    mime_type: str | None = None
    file_name: str | None = None
    width: int = 0
    height: int = 0


@dataclass(frozen=True, slots=True)
class Revision:
    """A previous version of an edited message."""

    text: str | None
    raw_text: str | None
    entities: tuple[JSON, ...]
    reply_markup: JSON | None


@dataclass(slots=True)
class SentMessage:
    """One message the bot sent, with edits applied (``revisions`` holds earlier versions)."""

    chat_id: int
    message_id: int
    date: int
    kind: str  # "text" | "photo" | "document"
    text: str | None = None  # plain text (text messages) or caption (media), after parsing
    raw_text: str | None = None  # the text/caption exactly as the bot sent it
    parse_mode: str | None = None
    entities: list[JSON] = field(default_factory=list)
    reply_markup: JSON | None = None
    thread_id: int | None = None
    reply_to_message_id: int | None = None
    disable_notification: bool = False
    photo: bytes | None = None
    document: bytes | None = None
    file_name: str | None = None
    file_id: str | None = None
    revisions: list[Revision] = field(default_factory=list)
    edit_date: int | None = None
    deleted: bool = False

    @property
    def caption(self) -> str | None:
        return self.text if self.kind != "text" else None

    @property
    def edited(self) -> bool:
        return bool(self.revisions)

    def buttons(self) -> list[list[JSON]]:
        """The inline keyboard rows (empty without one)."""
        markup = self.reply_markup or {}
        rows = markup.get("inline_keyboard") or []
        return [list(row) for row in rows]

    def button_labels(self) -> list[str]:
        return [str(b.get("text")) for row in self.buttons() for b in row]

    def callback_data(self, label: str) -> str:
        """The callback_data of the inline button whose text is ``label``."""
        for row in self.buttons():
            for button in row:
                if button.get("text") == label and "callback_data" in button:
                    return str(button["callback_data"])
        raise KeyError(f"no callback button {label!r} on message {self.message_id}: {self.button_labels()}")

    def to_dict(self) -> JSON:
        """A JSON-safe view for the control API."""
        return {
            "chat_id": self.chat_id,
            "message_id": self.message_id,
            "date": self.date,
            "kind": self.kind,
            "text": self.text,
            "raw_text": self.raw_text,
            "parse_mode": self.parse_mode,
            "entities": self.entities,
            "reply_markup": self.reply_markup,
            "thread_id": self.thread_id,
            "reply_to_message_id": self.reply_to_message_id,
            "disable_notification": self.disable_notification,
            "photo_size": None if self.photo is None else len(self.photo),
            "photo_sha256": None if self.photo is None else hashlib.sha256(self.photo).hexdigest(),
            "document_size": None if self.document is None else len(self.document),
            "file_name": self.file_name,
            "edits": len(self.revisions),
            "deleted": self.deleted,
        }


@dataclass(frozen=True, slots=True)
class CallbackAnswer:
    query_id: str
    chat_id: int
    message_id: int
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int | None


@dataclass(slots=True)
class _Query:
    chat_id: int
    message_id: int
    answered: bool = False


def _image_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG, GIF or JPEG; (0, 0) when unknown."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            length = int.from_bytes(data[i + 2 : i + 4], "big")
            if marker in (0xC0, 0xC1, 0xC2):
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return int(width), int(height)
            i += 2 + length
    return 0, 0


_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")


# --------------------------------------------------------------------------- the state


class EmulatorState:
    """Everything the emulated Telegram server knows about one bot."""

    def __init__(self, token: str, bot_username: str, *, strict_chats: bool = False) -> None:
        self.token = token
        self.bot_id = int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 1
        self.bot_username = bot_username
        self.strict_chats = strict_chats
        self.chats: dict[int, ChatInfo] = {}
        self.users: dict[int, JSON] = {}
        self.transcripts: dict[int, list[SentMessage]] = {}
        self.injected: dict[int, list[JSON]] = {}
        self.user_messages: dict[tuple[int, int], JSON] = {}
        self.pending: list[JSON] = []
        self.files: dict[str, StoredFile] = {}
        self.callback_answers: list[CallbackAnswer] = []
        self.chat_actions: list[tuple[int, str, int | None]] = []
        self.commands_by_scope: dict[tuple[str, str], list[JSON]] = {}
        self.webhook: JSON = {"url": ""}
        self.blocked: set[int] = set()
        self._queries: dict[str, _Query] = {}
        self._next_message_id: dict[int, int] = {}
        self._update_ids = itertools.count(1)
        self._query_ids = itertools.count(4_000_000_001)
        self._file_ids = itertools.count(1)

    # ---- bot identity

    def bot_user(self) -> JSON:
        return {"id": self.bot_id, "is_bot": True, "first_name": "Paper Agent", "username": self.bot_username}

    def api_get_me(self, _: Params) -> JSON:
        return {
            **self.bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    # ---- chats

    def add_chat(
        self,
        chat_id: int,
        chat_type: str = "private",
        *,
        title: str | None = None,
        username: str | None = None,
        first_name: str | None = None,
        is_forum: bool = False,
    ) -> ChatInfo:
        chat = self.chats.get(chat_id)
        if chat is None:
            if chat_type != "private" and title is None:
                title = f"Group {chat_id}"
            chat = ChatInfo(chat_id, chat_type, title, username, first_name, is_forum)
            self.chats[chat_id] = chat
        chat.is_forum = chat.is_forum or is_forum
        return chat

    def resolve_chat(self, ref: int | str) -> ChatInfo:
        if isinstance(ref, str):
            wanted = ref.removeprefix("@").lower()
            for chat in self.chats.values():
                if (chat.username or "").lower() == wanted:
                    return chat
            raise bad_request("chat not found")
        known = self.chats.get(ref)
        if known is not None:
            return known
        if self.strict_chats:
            raise bad_request("chat not found")
        return self.add_chat(ref, "private" if ref > 0 else "supergroup")

    def _message_id(self, chat_id: int) -> int:
        value = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = value + 1
        return value

    def transcript(self, chat_id: int) -> list[SentMessage]:
        return self.transcripts.setdefault(chat_id, [])

    # ---- injected updates

    def _push_update(self, chat_id: int, kind: str, payload: JSON) -> int:
        update_id = next(self._update_ids)
        update = {"update_id": update_id, kind: payload}
        self.pending.append(update)
        self.injected.setdefault(chat_id, []).append(update)
        return update_id

    def _user_json(self, user_id: int) -> JSON:
        return self.users.get(user_id) or {"id": user_id, "is_bot": False, "first_name": "Ann"}

    def inject_message(
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
        if thread_id is not None and chat_type != "supergroup":
            raise ValueError("forum topics (thread_id) exist only in supergroups")
        user: JSON = {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "en"}
        if username:
            user["username"] = username
        self.users[user_id] = user
        if chat_type == "private":
            chat = self.add_chat(chat_id, "private", username=username, first_name=first_name)
        else:
            chat = self.add_chat(chat_id, chat_type, is_forum=thread_id is not None)
        message: JSON = {
            "message_id": self._message_id(chat_id),
            "from": user,
            "chat": chat.to_api(),
            "date": int(time.time()),
            "text": text,
        }
        if thread_id is not None:
            message.update(message_thread_id=thread_id, is_topic_message=True)
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": utf16_len(command)}]
        if reply_to_message_id is not None:
            replied = self._message_json_by_id(chat_id, reply_to_message_id)
            if replied is not None:
                message["reply_to_message"] = replied
        self.user_messages[(chat_id, message["message_id"])] = message
        return self._push_update(chat_id, "message", message)

    def inject_button_press(self, chat_id: int, user_id: int, message_id: int, callback_data: str) -> str:
        sent = self.find_sent(chat_id, message_id)
        if sent is None or sent.deleted:
            raise KeyError(f"the bot sent no message {message_id} in chat {chat_id}")
        offered = [b.get("callback_data") for row in sent.buttons() for b in row]
        if callback_data not in offered:
            raise ValueError(f"message {message_id} has no button with callback_data {callback_data!r}")
        query_id = str(next(self._query_ids))
        self._queries[query_id] = _Query(chat_id, message_id)
        payload: JSON = {
            "id": query_id,
            "from": self._user_json(user_id),
            "message": self.message_json(sent),
            "chat_instance": str(abs(chat_id) * 7 + 13),
            "data": callback_data,
        }
        self._push_update(chat_id, "callback_query", payload)
        return query_id

    def confirm(self, offset: int | None) -> None:
        """Drop updates below ``offset``; a negative offset keeps only the last ``-offset``."""
        if offset is None or offset == 0:
            return
        if offset < 0:
            self.pending = self.pending[offset:]
        else:
            self.pending = [u for u in self.pending if u["update_id"] >= offset]

    def updates(self, limit: int, allowed: list[str] | None) -> list[JSON]:
        found = [u for u in self.pending if not allowed or any(k in u for k in allowed)]
        return found[:limit]

    # ---- message serialisation

    def find_sent(self, chat_id: int, message_id: int) -> SentMessage | None:
        for message in self.transcripts.get(chat_id, []):
            if message.message_id == message_id:
                return message
        return None

    def _message_json_by_id(self, chat_id: int, message_id: int) -> JSON | None:
        sent = self.find_sent(chat_id, message_id)
        if sent is not None and not sent.deleted:
            return self.message_json(sent, with_reply=False)
        return self.user_messages.get((chat_id, message_id))

    def message_json(self, m: SentMessage, *, with_reply: bool = True) -> JSON:
        chat = self.resolve_chat(m.chat_id)
        data: JSON = {"message_id": m.message_id, "from": self.bot_user(), "chat": chat.to_api(), "date": m.date}
        if m.thread_id is not None:
            data["message_thread_id"] = m.thread_id
            if chat.is_forum:
                data["is_topic_message"] = True
        if m.kind == "text":
            data["text"] = m.text
            if m.entities:
                data["entities"] = m.entities
        else:
            if m.text:
                data["caption"] = m.text
                if m.entities:
                    data["caption_entities"] = m.entities
            stored = self.files[m.file_id or ""]
            if m.kind == "photo":
                data["photo"] = [self._photo_size(stored)]
            else:
                data["document"] = {
                    "file_id": stored.file_id,
                    "file_unique_id": stored.file_unique_id,
                    "file_name": stored.file_name,
                    "mime_type": stored.mime_type,
                    "file_size": len(stored.data),
                }
        if m.reply_markup and "inline_keyboard" in m.reply_markup:
            data["reply_markup"] = {"inline_keyboard": m.reply_markup["inline_keyboard"]}
        if m.edit_date is not None:
            data["edit_date"] = m.edit_date
        if with_reply and m.reply_to_message_id is not None:
            replied = self._message_json_by_id(m.chat_id, m.reply_to_message_id)
            if replied is not None:
                data["reply_to_message"] = replied
        return data

    @staticmethod
    def _photo_size(stored: StoredFile) -> JSON:
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "width": stored.width,
            "height": stored.height,
            "file_size": len(stored.data),
        }

    # ---- sending

    def _check_markup(self, markup: Any) -> JSON | None:
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        for row in markup.get("inline_keyboard") or []:
            for button in row:
                if not isinstance(button, dict) or not button.get("text"):
                    raise bad_request("can't parse inline keyboard button: Text buttons are unallowed")
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= 64:
                    raise bad_request("BUTTON_DATA_INVALID")
        return markup

    def _reply_target(self, chat_id: int, p: Params) -> int | None:
        params = p.get_json("reply_parameters")
        allow = p.get_bool("allow_sending_without_reply")
        if isinstance(params, dict) and params.get("message_id") is not None:
            target = int(params["message_id"])
            allow = allow or bool(params.get("allow_sending_without_reply"))
        else:
            target_or_none = p.get_int("reply_to_message_id")
            if target_or_none is None:
                return None
            target = target_or_none
        if self._message_json_by_id(chat_id, target) is None:
            if allow:
                return None
            raise bad_request("message to be replied not found")
        return target

    def _new_message(self, chat: ChatInfo, p: Params, kind: str) -> SentMessage:
        message = SentMessage(
            chat_id=chat.id,
            message_id=0,
            date=int(time.time()),
            kind=kind,
            parse_mode=p.get_str("parse_mode"),
            reply_markup=self._check_markup(p.get_json("reply_markup")),
            thread_id=p.get_int("message_thread_id"),
            reply_to_message_id=self._reply_target(chat.id, p),
            disable_notification=p.get_bool("disable_notification"),
        )
        return message

    def _commit(self, message: SentMessage) -> JSON:
        message.message_id = self._message_id(message.chat_id)
        self.transcript(message.chat_id).append(message)
        return self.message_json(message)

    def check_blocked(self, chat_ref: int | str) -> None:
        if isinstance(chat_ref, int) and chat_ref in self.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")

    def api_send_message(self, p: Params) -> JSON:
        chat = self.resolve_chat(p.chat_id())
        raw = p.get_str("text")
        text, entities = format_text(raw, p.get_str("parse_mode"), p.get_json("entities"), limit=MAX_TEXT)
        message = self._new_message(chat, p, "text")
        message.text, message.raw_text, message.entities = text, raw, entities
        return self._commit(message)

    def _store_file(self, value: UploadedFile | str | None, kind: str) -> StoredFile:
        if value is None:
            raise bad_request(f"there is no {kind} in the request")
        if isinstance(value, str):
            if value in self.files:
                return self.files[value]
            if not value.startswith(("http://", "https://")):
                raise bad_request("wrong file identifier/HTTP URL specified")
            value = UploadedFile(b"", value.rsplit("/", 1)[-1] or None, None)
        number = next(self._file_ids)
        width, height = _image_size(value.data) if kind == "photo" else (0, 0)
        stored = StoredFile(
            file_id=f"{kind.upper()}-{number:06d}-{hashlib.sha1(value.data).hexdigest()[:12]}",
            file_unique_id=f"U{number:06d}",
            data=value.data,
            file_path=f"{kind}s/file_{number}{self._suffix(value, kind)}",
            mime_type=value.content_type,
            file_name=value.filename,
            width=width,
            height=height,
        )
        self.files[stored.file_id] = stored
        return stored

    @staticmethod
    def _suffix(value: UploadedFile, kind: str) -> str:
        if value.filename and "." in value.filename:
            return "." + value.filename.rsplit(".", 1)[-1]
        return ".jpg" if kind == "photo" else ""

    def _send_media(self, p: Params, kind: str) -> JSON:
        chat = self.resolve_chat(p.chat_id())
        value: UploadedFile | str | None = p.files.get(kind)
        if value is None:
            ref = p.get_str(kind)
            value = p.files.get(ref.removeprefix("attach://")) if ref and ref.startswith("attach://") else ref
        raw = p.get_str("caption")
        text, entities = format_text(
            raw, p.get_str("parse_mode"), p.get_json("caption_entities"), limit=MAX_CAPTION, caption=True
        )
        message = self._new_message(chat, p, kind)
        stored = self._store_file(value, kind)
        message.file_id, message.file_name = stored.file_id, stored.file_name
        if kind == "photo":
            message.photo = stored.data
        else:
            message.document = stored.data
        message.text, message.raw_text, message.entities = (text or None), raw, entities
        return self._commit(message)

    def api_send_photo(self, p: Params) -> JSON:
        return self._send_media(p, "photo")

    def api_send_document(self, p: Params) -> JSON:
        return self._send_media(p, "document")

    def api_get_file(self, p: Params) -> JSON:
        stored = self.files.get(p.get_str("file_id") or "")
        if stored is None:
            raise bad_request("invalid file_id")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.file_path,
        }

    def file_by_path(self, path: str) -> StoredFile | None:
        return next((f for f in self.files.values() if f.file_path == path), None)

    # ---- editing

    def _editable(self, p: Params) -> SentMessage:
        if p.has("inline_message_id"):
            raise bad_request("inline messages are not supported by the emulator")
        chat = self.resolve_chat(p.chat_id())
        message_id = p.required_int("message_id", "message identifier is not specified")
        message = self.find_sent(chat.id, message_id)
        if message is None or message.deleted:
            raise bad_request("message to edit not found")
        return message

    def _apply_edit(self, m: SentMessage, text: str | None, raw: str | None, entities: list[JSON],
                    markup: JSON | None, parse_mode: str | None) -> JSON:
        if (text, entities, markup) == (m.text, m.entities, m.reply_markup):
            raise bad_request(
                "message is not modified: specified new message content and reply markup are exactly "
                "the same as a current content and reply markup of the message"
            )
        m.revisions.append(Revision(m.text, m.raw_text, tuple(m.entities), m.reply_markup))
        m.text, m.raw_text, m.entities, m.reply_markup = text, raw, entities, markup
        m.parse_mode = parse_mode
        m.edit_date = int(time.time())
        return self.message_json(m)

    def api_edit_message_text(self, p: Params) -> JSON:
        message = self._editable(p)
        if message.kind != "text":
            raise bad_request("there is no text in the message to edit")
        raw = p.get_str("text")
        text, entities = format_text(raw, p.get_str("parse_mode"), p.get_json("entities"), limit=MAX_TEXT)
        markup = self._check_markup(p.get_json("reply_markup"))
        return self._apply_edit(message, text, raw, entities, markup, p.get_str("parse_mode"))

    def api_edit_message_caption(self, p: Params) -> JSON:
        message = self._editable(p)
        if message.kind == "text":
            raise bad_request("there is no caption in the message to edit")
        raw = p.get_str("caption")
        text, entities = format_text(
            raw, p.get_str("parse_mode"), p.get_json("caption_entities"), limit=MAX_CAPTION, caption=True
        )
        markup = self._check_markup(p.get_json("reply_markup"))
        return self._apply_edit(message, text or None, raw, entities, markup, p.get_str("parse_mode"))

    def api_edit_message_reply_markup(self, p: Params) -> JSON:
        message = self._editable(p)
        markup = self._check_markup(p.get_json("reply_markup"))
        return self._apply_edit(message, message.text, message.raw_text, message.entities, markup,
                                message.parse_mode)

    def api_delete_message(self, p: Params) -> bool:
        chat = self.resolve_chat(p.chat_id())
        message_id = p.required_int("message_id", "message identifier is not specified")
        message = self.find_sent(chat.id, message_id)
        if message is not None and not message.deleted:
            message.deleted = True
            return True
        if self.user_messages.pop((chat.id, message_id), None) is not None:
            return True
        raise bad_request("message to delete not found")

    # ---- misc methods

    def api_answer_callback_query(self, p: Params) -> bool:
        query_id = p.get_str("callback_query_id") or ""
        query = self._queries.get(query_id)
        if query is None or query.answered:
            raise bad_request("query is too old and response timeout expired or query ID is invalid")
        query.answered = True
        self.callback_answers.append(
            CallbackAnswer(
                query_id=query_id,
                chat_id=query.chat_id,
                message_id=query.message_id,
                text=p.get_str("text"),
                show_alert=p.get_bool("show_alert"),
                url=p.get_str("url"),
                cache_time=p.get_int("cache_time"),
            )
        )
        return True

    def api_send_chat_action(self, p: Params) -> bool:
        chat = self.resolve_chat(p.chat_id())
        action = p.get_str("action")
        if not action:
            raise bad_request("action is empty")
        self.chat_actions.append((chat.id, action, p.get_int("message_thread_id")))
        return True

    def api_get_chat(self, p: Params) -> JSON:
        ref = p.chat_id()
        chat = self.chats.get(ref) if isinstance(ref, int) else self.resolve_chat(ref)
        if chat is None:
            raise bad_request("chat not found")
        return {
            **chat.to_api(),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    @staticmethod
    def _scope_key(p: Params) -> tuple[str, str]:
        scope = p.get_json("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), p.get_str("language_code") or ""

    def api_set_my_commands(self, p: Params) -> bool:
        commands = p.get_json("commands")
        if not isinstance(commands, list):
            raise bad_request("commands is empty")
        for command in commands:
            if not isinstance(command, dict) or not _COMMAND_RE.fullmatch(str(command.get("command", ""))):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise bad_request("command description is empty")
        self.commands_by_scope[self._scope_key(p)] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    def api_get_my_commands(self, p: Params) -> list[JSON]:
        return list(self.commands_by_scope.get(self._scope_key(p), []))

    def api_delete_my_commands(self, p: Params) -> bool:
        self.commands_by_scope.pop(self._scope_key(p), None)
        return True

    def api_set_webhook(self, p: Params) -> bool:
        self.webhook = {"url": p.get_str("url") or "", "allowed_updates": p.get_json("allowed_updates")}
        if p.get_bool("drop_pending_updates"):
            self.pending.clear()
        return True

    def api_delete_webhook(self, p: Params) -> bool:
        self.webhook = {"url": ""}
        if p.get_bool("drop_pending_updates"):
            self.pending.clear()
        return True

    def api_get_webhook_info(self, _: Params) -> JSON:
        info: JSON = {
            "url": self.webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self.pending),
        }
        if self.webhook.get("allowed_updates"):
            info["allowed_updates"] = self.webhook["allowed_updates"]
        return info

    def api_ok(self, _: Params) -> bool:
        return True
