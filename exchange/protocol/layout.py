"""Fixed-width big-endian record layouts: one named field list -> one ``struct.Struct``.

A :class:`Layout` is the single source of truth for a message's bytes. ``docs/protocol.md``
prints the same tables, and ``tests/exchange/protocol/test_doc_tables.py`` parses the doc
and checks every offset, length and type against these layouts.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

#: Doc type names -> struct format characters (``alpha`` fields carry their length).
TYPE_CODES: dict[str, str] = {
    "char": "c",
    "uint8": "B",
    "uint16": "H",
    "uint32": "I",
    "int64": "q",
    "uint64": "Q",
    "alpha": "s",
}


@dataclass(frozen=True)
class FieldSpec:
    """One field: ``name``, doc ``type`` (see :data:`TYPE_CODES`), byte ``length``."""

    name: str
    type: str
    length: int

    @property
    def fmt(self) -> str:
        """The struct format of this field (``"16s"`` for a 16-byte alpha)."""
        code = TYPE_CODES[self.type]
        return f"{self.length}s" if code == "s" else code


def F(name: str, type_: str, length: int | None = None) -> FieldSpec:
    """Shorthand constructor; the length of numeric types is implied."""
    if length is None:
        length = struct.calcsize(">" + TYPE_CODES[type_])
    return FieldSpec(name, type_, length)


@dataclass(frozen=True)
class Layout:
    """A message layout: its title (as in the doc), type byte and ordered fields."""

    title: str
    type_byte: bytes
    fields: tuple[FieldSpec, ...]
    struct: struct.Struct = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        fmt = ">" + "".join(f.fmt for f in self.fields)
        object.__setattr__(self, "struct", struct.Struct(fmt))

    @property
    def size(self) -> int:
        """Total bytes of the record, type byte included."""
        return self.struct.size

    def offsets(self) -> list[tuple[str, int, int, str]]:
        """``(name, offset, length, type)`` per field, in wire order."""
        out = []
        off = 0
        for f in self.fields:
            out.append((f.name, off, f.length, f.type))
            off += f.length
        return out
