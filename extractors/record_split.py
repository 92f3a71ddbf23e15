"""Cutting a PubmedArticleSet into pieces of whole records, so the pieces can be parsed apart (or in parallel).

The input (path, bytes or binary file; .gz decompressed on the fly) is read in blocks and cut just
before a ``<PubmedArticle>``, ``<PubmedBookArticle>`` or ``<DeleteCitation>`` start tag, once a
piece has reached ``target`` bytes (``bytes.find``: no XML parsing here). Every piece is parsed as
``head + body [+ closing tag]``, where ``head`` is the document's own prolog and root start tag, so
each piece is a small well-formed document parsed with the same hardened options
(`litmeta.extractors.xmlsource.iter_piece_elements`); a piece knows the file line it starts at, so messages
keep the file's line numbers.

A cut is only made where it cannot be inside a comment, CDATA section or processing instruction.
Inputs this module does not cut are handed back whole as one *stream* piece, parsed by the ordinary
streaming parser (`litmeta.extractors.xmlsource.iter_elements`):
- a head that is not plain (an internal DTD subset, an encoding other than UTF-8, comments, a root
  other than PubmedArticleSet, or no record start in the first ``max_piece`` bytes);
- from the point where a piece would grow beyond ``max_piece`` bytes without a place to cut
  (a hostile or corrupt record: the streaming parser refuses it with bounded memory).
A read error (truncated gzip, unreadable file) ends the input with a final piece that carries the
error, after the bytes read before it.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from litmeta.extractors.xmlsource import GZIP_ERRORS, InputError, Source, _open, gzip_error

RECORD_STARTS = (b"<PubmedArticle", b"<PubmedBookArticle", b"<DeleteCitation")
ROOT = b"PubmedArticleSet"
CLOSE = b"</PubmedArticleSet>"
_PLAIN_HEAD = re.compile(
    rb"(?:\xef\xbb\xbf)?\s*(?:<\?xml(?P<decl>[^<>?]*)\?>)?\s*(?:<!DOCTYPE[^\[\]<>]*>)?\s*"
    rb"<PubmedArticleSet(?:\s[^<>]*)?>\s*", re.S)
_ENCODING = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
BLOCK = 1 << 16  # bytes per read of the (decompressed) input
_BANG_OPENERS = ((b"<!--", b"-->"), (b"<![CDATA[", b"]]>"))  # comment, CDATA section: "<!" then these
_PI = (b"<?", b"?>")  # processing instruction


@dataclass
class Piece:
    """A run of whole records (``body``), or (``stream`` set) the rest of the input to stream-parse.

    first_line: file line of the piece's first byte; byte_offset: uncompressed offset of it.
    final: the body runs to the end of the input (it holds the real closing tag, if any).
    error: the input broke right after this (final) piece.
    """

    index: int
    body: bytes
    first_line: int
    byte_offset: int
    final: bool = False
    error: InputError | None = None
    stream: BinaryIO | None = None


class _Concat:
    """A read-only binary stream: some bytes, then the rest of another stream (or an error to raise)."""

    def __init__(self, parts: list[bytes], rest: BinaryIO | None, error: BaseException | None = None) -> None:
        self._parts = [p for p in parts if p]
        self._rest, self._error = rest, error

    def read(self, n: int = -1) -> bytes:
        if self._parts:
            part = self._parts[0]
            if n < 0 or n >= len(part):
                self._parts.pop(0)
                return part
            self._parts[0] = part[n:]
            return part[:n]
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        if self._rest is None:
            return b""
        return self._rest.read(n)

    def close(self) -> None:
        if self._rest is not None:
            self._rest.close()


class _MarkupScan:
    """Whether a place in the buffer is outside every comment, CDATA section and processing instruction.

    Scans forward once from the last place known to be outside them (``done``), skipping each
    construct to its closer. Openers are found by their second byte, ``!`` or ``?``, which are rare
    in PubMed XML, so the scan runs at ``memchr`` speed instead of searching for each opener.
    """

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = 0  # buf[:done] leaves no construct open

    def ok(self, buf: bytes, pos: int) -> bool:
        """True when no construct is open at ``pos``."""
        if pos < self.done:  # behind the scan (not the splitter's order): scan again from the start
            self.done = 0
        i = self.done
        while True:
            opened = _next_opener(buf, i, pos)
            if opened is None:
                self.done = pos
                return True
            start, opener, closer = opened
            end = buf.find(closer, start + len(opener), pos)
            if end < 0:
                self.done = start  # open at pos: look for its closer again next time
                return False
            i = end + len(closer)

    def cut(self, n: int) -> None:
        """The buffer lost its first ``n`` bytes (a piece was cut off there)."""
        self.done = max(self.done - n, 0)


def _next_opener(buf: bytes, i: int, pos: int) -> tuple[int, bytes, bytes] | None:
    """The first comment, CDATA or processing-instruction opener in ``buf[i:pos]``: (offset, opener, closer)."""
    bang = buf.find(b"!", i + 1, pos)
    quest = buf.find(b"?", i + 1, pos)
    while bang >= 0 or quest >= 0:
        if quest < 0 or 0 <= bang < quest:
            k, bang = bang, -1
            if buf[k - 1] == 0x3C:  # "<!"
                for opener, closer in _BANG_OPENERS:
                    if buf.startswith(opener, k - 1):
                        return k - 1, opener, closer
            bang = buf.find(b"!", k + 1, pos)
        else:
            k, quest = quest, -1
            if buf[k - 1] == 0x3C:  # "<?"
                return k - 1, *_PI
            quest = buf.find(b"?", k + 1, pos)
    return None


def _next_start(buf: bytes, pos: int) -> int:
    """Offset of the first record start tag at or after ``pos``, or -1."""
    best = -1
    for tag in RECORD_STARTS:  # most common first: the others are only looked for before it
        i = pos
        while True:
            i = buf.find(tag, i, best if best >= 0 else len(buf))
            if i < 0:
                break
            after = buf[i + len(tag):i + len(tag) + 1]
            if after in (b">", b" ", b"\n", b"\t", b"\r", b"/"):
                if best < 0 or i < best:
                    best = i
                break
            if after == b"":  # the tag name may go on in the next block
                if best < 0 or i < best:
                    best = i
                break
            i += len(tag)
    return best


_ARTICLES = ((b"<PubmedArticle", b"</PubmedArticle>"), (b"<PubmedBookArticle", b"</PubmedBookArticle>"))
_NAME_ENDS = frozenset(b"> \t\r\n")  # after a start tag's name (not "/": an empty record has no end tag)


class RecordBytes:
    """The bytes of each article record of a piece body, from its start tag to its end tag, as delivered.

    Records are found with ``bytes.find`` and looked up by the line their start tag is on (lxml's
    ``sourceline``) and their PMID, so a record is only ever matched to its own bytes: one whose
    bytes are not found unambiguously (two records on a line, a record tag inside a comment) gets
    None, and the caller falls back to serialising the element.
    """

    __slots__ = ("_body", "_by_line")

    def __init__(self, body: bytes, first_line: int) -> None:
        """``first_line``: the line number lxml gives the first line of ``body``."""
        starts: list[tuple[int, bytes]] = []
        for start_tag, end_tag in _ARTICLES:
            n = len(start_tag)
            i = body.find(start_tag)
            while i >= 0:
                if body[i + n:i + n + 1] and body[i + n] in _NAME_ENDS:
                    starts.append((i, end_tag))
                i = body.find(start_tag, i + n)
        starts.sort()
        by_line: dict[int, tuple[int, int] | None] = {}
        line, counted = first_line, 0
        for k, (i, end_tag) in enumerate(starts):
            line += body.count(b"\n", counted, i)
            counted = i
            end = body.rfind(end_tag, i, starts[k + 1][0] if k + 1 < len(starts) else len(body))
            by_line[line] = None if line in by_line or end < 0 else (i, end + len(end_tag))
        self._body = body
        self._by_line = by_line

    def get(self, line: int | None, pmid: int) -> memoryview | None:
        """The bytes of the record whose start tag is on ``line``, if they hold ``pmid``'s PMID element."""
        span = self._by_line.get(line) if line is not None else None
        if span is None:
            return None
        start, end = span
        if self._body.find(b">%d</PMID>" % pmid, start, end) < 0:
            return None
        return memoryview(self._body)[start:end]


def plain_head(head: bytes) -> bool:
    """True when ``head`` (everything before the first record) can prefix every piece unchanged."""
    m = _PLAIN_HEAD.fullmatch(head)
    if m is None:
        return False
    decl = m.group("decl")
    if decl:
        enc = _ENCODING.search(decl)
        if enc and enc.group(1).lower() not in (b"utf-8", b"utf8"):
            return False
    return True


class RecordSplitter:
    """Iterate over the `Piece` objects of one PubMed XML input; ``head`` is set once the first piece is out.

    A stream piece owns the rest of the input (its ``stream`` closes it); otherwise the input is
    closed when iteration ends.
    """

    def __init__(self, source: Source, name: str, *, target: int = 2 << 20, max_piece: int = 64 << 20) -> None:
        self.source, self.name = source, name
        self.target, self.max_piece = target, max(max_piece, target)
        self.head = b""

    def __iter__(self) -> Iterator[Piece]:
        try:
            fh = _open(self.source)
        except OSError as exc:
            raise InputError(self.name, "open", exc.strerror or str(exc), "check the path and permissions") from exc
        self._handed_off = False
        try:
            yield from self._pieces(fh)
        finally:
            if not self._handed_off:
                fh.close()

    def _pieces(self, fh: BinaryIO) -> Iterator[Piece]:
        buf = b""
        eof = False
        raw_error: BaseException | None = None
        offset = 0  # uncompressed offset of buf[0]
        line = 1  # file line of buf[0]
        index = 0
        scanned = 0  # no usable cut in buf[:scanned]
        markup = _MarkupScan()  # where comments, CDATA sections and PIs open and close in buf
        while True:
            # read until a cut is possible past ``target`` (or the input ends / breaks)
            if not eof and raw_error is None:
                # small reads: a read that breaks (truncated gzip) loses only what it was decompressing
                blocks = [buf]
                got = 0
                while got < self.target:
                    try:
                        data = fh.read(BLOCK)
                    except (*GZIP_ERRORS, OSError) as exc:
                        raw_error = exc
                        break
                    if not data:
                        eof = True
                        break
                    blocks.append(data)
                    got += len(data)
                buf = b"".join(blocks)
            if not self.head and index == 0:
                first = _next_start(buf, 0)
                if first >= 0 and buf.find(b">", first) < 0 and not eof and raw_error is None:
                    continue
                if first < 0 or not plain_head(buf[:first]) or not markup.ok(buf, first):
                    if first < 0 and not eof and raw_error is None and len(buf) <= self.max_piece:
                        continue
                    # not an input to cut: the streaming parser reads all of it
                    self._handed_off = True
                    yield Piece(0, b"", 1, 0, final=True, stream=_Concat([buf], fh, raw_error))
                    return
                self.head = buf[:first]
                line += self.head.count(b"\n")
                offset += first
                buf = buf[first:]
                markup.cut(first)
                scanned = 0
            cut = -1
            pos = max(self.target, scanned, 1)
            while pos < len(buf):
                cut = _next_start(buf, pos)
                if cut < 0 or (markup.ok(buf, cut) and buf.find(b">", cut, cut + 40) >= 0):
                    break
                pos, cut = cut + 1, -1
            if cut > 0:
                body, buf = buf[:cut], buf[cut:]
                markup.cut(cut)
                yield Piece(index, body, line, offset)
                line += body.count(b"\n")
                offset += len(body)
                index += 1
                scanned = 0
                continue
            scanned = max(len(buf) - 64, 0)
            if eof or raw_error is not None:
                error = None
                if raw_error is not None:
                    error = (gzip_error(self.name, offset + len(buf), raw_error)
                             if not isinstance(raw_error, OSError) or isinstance(raw_error, gzip.BadGzipFile)
                             else InputError(self.name, "read", raw_error.strerror or str(raw_error), "check the file"))
                yield Piece(index, buf, line, offset, final=True, error=error)
                return
            if len(buf) > self.max_piece:
                # no place to cut: stream-parse the rest (head + what is buffered + the rest of the input)
                self._handed_off = True
                yield Piece(index, buf, line, offset, final=True, stream=_Concat([self.head, buf], fh))
                return
