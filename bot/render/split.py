"""``split_html``: a reply longer than Telegram's 4,096 characters as several, at line boundaries, never inside
a tag or an entity."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

MAX_MESSAGE = 4096

_TOKEN_RE = re.compile(r"<[^>]*>|&[^;\s<>&]{1,10};|\n| +|[^<&\n ]{1,64}|[<&]")
_TAG_NAME_RE = re.compile(r"</?\s*([a-zA-Z0-9-]+)")


def _u16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _closers(stack: Sequence[tuple[str, str]]) -> str:
    return "".join(f"</{name}>" for name, _ in reversed(stack))


def _openers(stack: Sequence[tuple[str, str]]) -> str:
    return "".join(tag for _, tag in stack)


def _step(stack: list[tuple[str, str]], token: str) -> None:
    if not token.startswith("<") or len(token) < 3:
        return
    match = _TAG_NAME_RE.match(token)
    if match is None:
        return
    name = match.group(1).lower()
    if token.startswith("</"):
        for i in range(len(stack) - 1, -1, -1):
            if stack[i][0] == name:
                del stack[i:]
                break
    elif not token.endswith("/>"):
        stack.append((name, token))


def _has_text(chunk: str) -> bool:
    return bool(html.unescape(re.sub(r"<[^>]*>", "", chunk)).strip())


def split_html(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Cut ``text`` into pieces of at most ``limit`` UTF-16 units, at line boundaries when it can.

    A line longer than a message is cut between words (or, failing that, between tokens). Tags
    open at a cut are closed at the end of one piece and reopened at the start of the next;
    entities (``&amp;``) and tags are never cut. Pieces with no visible text are dropped.
    """
    if _u16(text) <= limit:
        return [text] if _has_text(text) else []
    chunks: list[str] = []
    stack: list[tuple[str, str]] = []
    current: list[str] = []
    breaks: dict[str, tuple[int, list[tuple[str, str]]]] = {}  # "\n" / " " -> last index there, open tags

    size = 0

    def flush(upto: int, open_tags: list[tuple[str, str]], skip: int) -> None:
        nonlocal current, size
        piece = "".join(current[:upto]) + _closers(open_tags)
        if _has_text(piece):
            chunks.append(piece.strip("\n "))
        current = [_openers(open_tags), *current[upto + skip:]]
        size = sum(_u16(t) for t in current)
        breaks.clear()
        probe = list(open_tags)
        for i, tok in enumerate(current[1:], start=1):  # cut points left in the remainder
            if tok == "\n" or tok.startswith(" "):
                breaks["\n" if tok == "\n" else " "] = (i, list(probe))
            _step(probe, tok)

    for token in _TOKEN_RE.findall(text):
        need = _u16(token) + _u16(_closers(stack)) + 40
        if current and size + need > limit:
            cut = breaks.get("\n") or breaks.get(" ")
            if cut is not None and cut[0] > 0:
                flush(cut[0], cut[1], 1)
            if size + need > limit:
                flush(len(current), list(stack), 0)
        if token == "\n" or token.startswith(" "):
            breaks["\n" if token == "\n" else " "] = (len(current), list(stack))
        current.append(token)
        size += _u16(token)
        _step(stack, token)
    piece = "".join(current)
    if _has_text(piece):
        chunks.append(piece.strip("\n "))
    return chunks
