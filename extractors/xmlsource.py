"""Opening XML inputs safely: paths (.xml or .xml.gz), bytes and file objects, streamed with lxml.

Every parser goes through `iter_elements`, which:
- never expands entities, never loads a DTD, never touches the network (XXE and entity bombs are
  neutralised: an entity reference stays an unexpanded node and contributes no text);
- streams with ``iterparse`` and frees each record after the caller is done with it (constant memory);
- turns a broken input (truncated XML, invalid UTF-8, truncated gzip, an unreadable file) into an
  `InputError` that names the input, the line, and what to do.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from isal import igzip
from isal.igzip_lib import IsalError
from lxml import etree

Source = str | Path | bytes | BinaryIO

# What a broken .gz raises while read: truncated (EOFError), not gzip (BadGzipFile), corrupt deflate
# data (zlib.error from the standard library, IsalError from isal's igzip, which litmeta reads with)
GZIP_ERRORS: tuple[type[BaseException], ...] = (EOFError, gzip.BadGzipFile, zlib.error, IsalError)


class InputError(Exception):
    """An input that cannot be read to the end. ``source`` names it, ``where`` says where it broke."""

    def __init__(self, source: str, where: str, reason: str, hint: str = "") -> None:
        self.source, self.where, self.reason, self.hint = source, where, reason, hint
        msg = f"{source}: {where}: {reason}"
        super().__init__(msg + (f" ({hint})" if hint else ""))

    def __reduce__(self) -> tuple:  # pickles (it crosses process boundaries with parsed pieces)
        return (type(self), (self.source, self.where, self.reason, self.hint))


def parser_options() -> dict:
    """lxml options for untrusted XML: no entity expansion, no DTD, no network, bounded text nodes."""
    return {
        "resolve_entities": False,
        "load_dtd": False,
        "dtd_validation": False,
        "no_network": True,
        "huge_tree": False,  # libxml2 refuses text nodes over 10 MB and nesting deeper than 256
        "remove_comments": True,
        "remove_pis": True,
    }


def safe_parser() -> etree.XMLParser:
    return etree.XMLParser(**parser_options())


def parse_document(data: bytes) -> etree._Element:
    """Parse a whole document held in memory (E-utilities result documents, pieces of a split file) with the hardened parser."""
    return etree.fromstring(data, safe_parser())


def describe(source: Source, name: str | None = None) -> str:
    if name:
        return name
    if isinstance(source, (str, Path)):
        return str(source)
    if isinstance(source, bytes):
        return f"<{len(source)} bytes>"
    return getattr(source, "name", "<stream>")


def _open(source: Source) -> BinaryIO:
    if isinstance(source, bytes):
        data = source
        return igzip.GzipFile(fileobj=io.BytesIO(data)) if data[:2] == b"\x1f\x8b" else io.BytesIO(data)
    if isinstance(source, (str, Path)):
        fh = open(source, "rb")  # noqa: SIM115 - closed by the caller
        if fh.read(2) == b"\x1f\x8b":
            fh.close()
            return igzip.GzipFile(filename=source, mode="rb")  # owns (and closes) its file
        fh.seek(0)
        return fh
    head = source.peek(2)[:2] if hasattr(source, "peek") else b""
    return igzip.GzipFile(fileobj=source) if head == b"\x1f\x8b" else source  # type: ignore[return-value]


class _HashingReader:
    """Reads through a stream, hashing the uncompressed bytes (the document's sha256)."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()
        self.nbytes = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.sha.update(data)
        self.nbytes += len(data)
        return data


@dataclass
class Stream:
    """State of one streamed input: its name, and (once read to the end) its sha256."""

    name: str
    reader: _HashingReader | None = None

    @property
    def sha256(self) -> str | None:
        return self.reader.sha.hexdigest() if self.reader else None


def iter_elements(
    source: Source,
    tags: Iterable[str],
    stream: Stream,
    accept: Callable[[etree._Element], bool] | None = None,
    *,
    line_offset: int = 0,
    byte_offset: int = 0,
) -> Iterator[etree._Element]:
    """Yield each complete element whose tag is in ``tags`` (and that ``accept`` takes), then free it.

    Elements are yielded at their end event; after the caller resumes, the element is cleared and
    its already-processed preceding siblings are dropped, so memory stays flat on any file size.
    Raises `InputError` on a broken input, after yielding every record before the break.
    ``line_offset`` / ``byte_offset`` are added to the line and byte positions in messages, for a
    source that is the rest of a larger input (see `litmeta.extractors.record_split`).
    """
    name = stream.name
    try:
        fh = _open(source)
    except OSError as exc:
        raise InputError(name, "open", exc.strerror or str(exc), "check the path and permissions") from exc
    reader = _HashingReader(fh)
    stream.reader = reader
    context = etree.iterparse(reader, events=("end",), tag=tuple(tags), **parser_options())
    try:
        yield from _yield_and_free(context, accept)
    except etree.XMLSyntaxError as exc:
        raise syntax_error(name, exc, line_offset) from exc
    except GZIP_ERRORS as exc:
        raise gzip_error(name, byte_offset + reader.nbytes, exc) from exc
    except OSError as exc:
        raise InputError(name, "read", exc.strerror or str(exc), "check the file") from exc
    finally:
        if isinstance(source, (str, Path)):
            fh.close()


_LINE_IN_MSG = re.compile(r"\bline (\d+)")


def syntax_error(name: str, exc: etree.XMLSyntaxError, line_offset: int = 0) -> InputError:
    """The `InputError` for an XML syntax error; line numbers shifted by ``line_offset``."""
    lineno = getattr(exc, "lineno", None)
    line = f"line {lineno + line_offset}" if lineno else "XML"
    msg = str(exc.msg if hasattr(exc, "msg") else exc)
    if line_offset:
        msg = _LINE_IN_MSG.sub(lambda m: f"line {int(m.group(1)) + line_offset}", msg)
    low = msg.lower()
    hint = "the file is truncated or not well-formed XML; fetch or download it again"
    if "encoding" in low or "utf-8" in low or "bytes" in low:
        hint = "the file is not valid UTF-8; re-download it or fix its encoding"
    if "xml_parse_huge" in low or "resource limit" in low or "excessive depth" in low or "amplification" in low:
        hint = ("refused as hostile or corrupt input: text nodes over 10 MB, nesting deeper than 256 levels and "
                "entity expansion are not accepted; nothing after this point was read")
    return InputError(name, line, msg, hint)


def gzip_error(name: str, nbytes: int, exc: BaseException) -> InputError:
    """The `InputError` for a gzip stream that breaks after ``nbytes`` uncompressed bytes."""
    return InputError(
        name, f"after {nbytes} uncompressed bytes", f"gzip stream broken: {exc}",
        "the .gz file is truncated or corrupt; download it again",
    )


def iter_piece_elements(
    data: bytes,
    tags: Iterable[str],
    name: str,
    accept: Callable[[etree._Element], bool] | None = None,
    *,
    complete: bool = True,
    line_offset: int = 0,
) -> Iterator[etree._Element]:
    """Like `iter_elements`, for a piece of a document held in memory (parsed in one go, same parser options).

    ``data`` is a well-formed document when the input is (prolog and root start tag, whole records,
    closing tag). ``complete=False``: the input broke after ``data``; the elements completed in it
    are yielded and the missing end is not reported (the caller reports the break).
    Every element sees its full tail text, wherever the piece was cut.
    """
    tags = tuple(tags)
    if complete:
        # a well-formed piece (nearly always): libxml2 builds the tree in one call, and the
        # records are read off it in the order a pull parser gives them, ~25 % less CPU than
        # feeding a pull parser (whose event filter runs on every element)
        try:
            root = parse_document(data)
        except etree.XMLSyntaxError:
            pass  # parsed again below: the pull parser delivers the records before the error
        else:
            yield from _records_of(root, tags, accept)
            return
    parser = etree.XMLPullParser(events=("end",), tag=tags, **parser_options())
    error: etree.XMLSyntaxError | None = None
    try:
        parser.feed(data)
        if complete:
            parser.close()
    except etree.XMLSyntaxError as exc:
        error = exc  # the events before the error are still delivered below
    yield from _yield_and_free(parser.read_events(), accept)
    if error is not None:
        raise syntax_error(name, error, line_offset) from error


def _records_of(root: etree._Element, tags: tuple[str, ...],
                accept: Callable[[etree._Element], bool] | None) -> Iterator[etree._Element]:
    """What ``iterwalk(root, events=("end",), tag=tags)`` would yield (``accept`` taking them), from a
    tree parsed whole: a child of the root that is a record holding no further record is taken as it
    is (C-level child iteration, without a proxy object for every element as iterwalk makes); any other
    child is walked. Elements are not cleared: the tree goes at once when the caller drops it.
    """
    names = frozenset(tags)
    take = accept or _every
    for child in root:
        tag = child.tag
        if not isinstance(tag, str):  # an unexpanded entity reference: holds no element
            continue
        if tag in names and not any(map(take, child.iterdescendants(*tags))):
            if take(child):
                yield child
            continue
        for _event, elem in etree.iterwalk(child, events=("end",), tag=tags):
            if take(elem):
                yield elem
    if root.tag in names and take(root):
        yield root


def _every(_elem: etree._Element) -> bool:
    return True


def _yield_and_free(events: Iterable, accept: Callable[[etree._Element], bool] | None) -> Iterator[etree._Element]:
    """Yield each (accepted) element of ``(event, element)`` pairs, then clear it and drop its processed siblings."""
    for _event, elem in events:
        if accept is not None and not accept(elem):
            continue
        yield elem
        elem.clear(keep_tail=False)
        parent = elem.getparent()
        if parent is not None:
            while elem.getprevious() is not None:
                del parent[0]


def text_of(elem: etree._Element | None) -> str | None:
    """All text inside an element, inline markup (i, sup, sub, b, MathML) flattened, whitespace normalised."""
    if elem is None:
        return None
    text = " ".join("".join(elem.itertext()).split())
    return text or None
