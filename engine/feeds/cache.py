"""A columnar cache beside a candle CSV, so that a second read parses no text.

``data/BTC_USDT-5m.csv`` is cached as ``data/.BTC_USDT-5m.csv.arrow``: an Arrow IPC file (uncompressed,
so it is memory-mapped and read without a copy) holding the parsed columns before any check, and in
its metadata the CSV's size, mtime and inode it was made from and how the rows were read. Any change
to the CSV (an append, a rewrite) makes it stale, and the next read parses the CSV and replaces it.
The checks (prices, order, spacing, gaps) run on every read, from the cache as from the text.
Beside it, ``.BTC_USDT-5m.csv.arrow.json`` records where each column starts in that file (and the
file's own size, mtime and inode), so a read maps the columns with numpy alone; without a matching
index, pyarrow reads the Arrow file.

Only files of at least ``MIN_BYTES`` are cached (smaller ones parse in milliseconds). Where the cache
cannot be written (a read-only folder, for root too: one without write bits; a full disk) or read, the
CSV is parsed as if there were none, and nothing is said: the cache only saves time.
"""

from __future__ import annotations

import json
import mmap
import os
from pathlib import Path
from typing import Any

import numpy as np

from engine.core.model import CandleArrays

VERSION = 1
MIN_BYTES = 8 << 20
_FIELDS = ("ts", "open", "high", "low", "close", "volume")
_KEY = b"trading_agent_csv"


def cache_path(csv: str | os.PathLike[str]) -> Path:
    p = Path(csv)
    return p.with_name(f".{p.name}.arrow")


def _source_key(st: os.stat_result) -> dict[str, int]:
    return {"version": VERSION, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}


Flags = tuple[bool, bool, bool]  # how the rows were read: exact header, from ISO dates, some dates naive


Layout = tuple[dict[str, Any], int, list[int]]  # the cache's metadata, its rows, each column's byte offset


def index_path(csv: str | os.PathLike[str]) -> Path:
    """Where each column starts in the cache file, so a read needs no pyarrow (~47 MB and ~40 ms less)."""
    p = cache_path(csv)
    return p.with_name(p.name + ".json")


def cached_rows(csv: str | os.PathLike[str]) -> tuple[CandleArrays, Flags] | None:
    """The cached rows of ``csv`` when the cache was made from the file as it is now; else None."""
    try:
        st = os.stat(csv)
        if st.st_size < MIN_BYTES:
            return None
        with open(cache_path(csv), "rb") as f:
            arrow_st = os.fstat(f.fileno())
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)  # private pages: arrays stay writable
        layout = _indexed_layout(csv, arrow_st) or _arrow_layout(mapped)
        return None if layout is None else _rows_from(mapped, layout, st)
    except (OSError, ValueError, KeyError, TypeError, ImportError):
        return None


def _indexed_layout(csv: str | os.PathLike[str], arrow_st: os.stat_result) -> Layout | None:
    """The layout the index recorded for this very cache file (same size, mtime and inode); else None."""
    try:
        index = json.loads(index_path(csv).read_text())
    except (OSError, ValueError):
        return None
    if index.get("arrow") != [arrow_st.st_size, arrow_st.st_mtime_ns, arrow_st.st_ino]:
        return None
    return dict(index["meta"]), int(index["rows"]), [int(x) for x in index["offsets"]]


def _arrow_layout(mapped: mmap.mmap) -> Layout | None:
    """The layout as pyarrow reads the Arrow IPC file."""
    import pyarrow as pa
    import pyarrow.ipc

    base = np.frombuffer(mapped, dtype=np.uint8).ctypes.data
    try:
        table = pyarrow.ipc.open_file(pa.py_buffer(mapped)).read_all()
    except pa.ArrowException:
        return None
    meta = json.loads((table.schema.metadata or {})[_KEY])
    if table.column_names != list(_FIELDS):
        return None
    offsets = []
    for name in _FIELDS:
        chunks = table.column(name).chunks
        if len(chunks) != 1 or chunks[0].null_count:
            return None
        offsets.append(chunks[0].buffers()[1].address - base)
    return meta, table.num_rows, offsets


def _rows_from(mapped: mmap.mmap, layout: Layout, st: os.stat_result) -> tuple[CandleArrays, Flags] | None:
    meta, rows, offsets = layout
    if meta["source"] != _source_key(st) or len(offsets) != len(_FIELDS):
        return None
    if any(off < 0 or off % 8 or off + 8 * rows > len(mapped) for off in offsets):
        return None
    columns = [np.frombuffer(mapped, dtype=np.int64 if name == "ts" else np.float64, count=rows, offset=off)
               for name, off in zip(_FIELDS, offsets, strict=True)]
    return CandleArrays(*columns), (bool(meta["exact_header"]), bool(meta["dated"]), bool(meta["naive"]))


def store_rows(csv: str | os.PathLike[str], a: CandleArrays, flags: Flags) -> None:
    """Write the cache of ``csv`` (atomically); quietly nothing where it cannot be written."""
    try:
        st = os.stat(csv)
        if st.st_size < MIN_BYTES or not _writable(cache_path(csv).parent):
            return
        import pyarrow as pa
        import pyarrow.ipc

        meta = {"source": _source_key(st), "exact_header": flags[0], "dated": flags[1], "naive": flags[2]}
        columns = [_arrow_view(pa, np.ascontiguousarray(x)) for x in (a.ts, a.open, a.high, a.low, a.close, a.volume)]
        table = pa.table(columns, names=list(_FIELDS), metadata={_KEY: json.dumps(meta).encode()})
        target = cache_path(csv)
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        try:
            with pa.OSFile(str(tmp), "wb") as sink, pyarrow.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        _write_index(csv, target)
    except (OSError, ValueError, ImportError):  # pyarrow's errors derive from these
        return


def _write_index(csv: str | os.PathLike[str], target: Path) -> None:
    with open(target, "rb") as f:
        arrow_st = os.fstat(f.fileno())
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    layout = _arrow_layout(mapped)
    del mapped  # the layout holds plain numbers, not views of the file
    if layout is None:
        return
    meta, rows, offsets = layout
    index = {"arrow": [arrow_st.st_size, arrow_st.st_mtime_ns, arrow_st.st_ino], "meta": meta, "rows": rows,
             "offsets": offsets}
    path = index_path(csv)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(index))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _writable(folder: Path) -> bool:
    """A folder laid read-only (no write bit for anyone) counts as read-only even for root, who could write."""
    return bool(os.stat(folder).st_mode & 0o222) and os.access(folder, os.W_OK)


def _arrow_view(pa: Any, values: np.ndarray) -> Any:
    """An Arrow array over ``values``' memory, without pyarrow's numpy conversion (~50 MB of code paged in)."""
    kind = pa.int64() if values.dtype == np.int64 else pa.float64()
    return pa.Array.from_buffers(kind, len(values), [None, pa.py_buffer(values)])
