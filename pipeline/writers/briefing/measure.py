"""Text measured as it will print, so a page's words are wrapped or shortened to the room they
have (a long region, district or label never runs into a map or the next column): widths come
from the same font metrics the PDF uses, not from a count of characters."""

from __future__ import annotations

import threading
from functools import lru_cache

from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.font_manager import FontProperties

_local = threading.local()  # a renderer per thread: the pack's pages may be drawn beside other work
ELLIPSIS = "…"


def width(text: str, size: float, weight: str = "normal") -> float:
    """`text`'s printed width in inches, one line, at `size` pt."""
    renderer = getattr(_local, "renderer", None)
    if renderer is None:
        renderer = _local.renderer = RendererAgg(1, 1, 72)  # 72 dpi: a pixel is a point
    w, _, _ = renderer.get_text_width_height_descent(text, _font(size, weight), ismath=False)
    return w / 72


@lru_cache(maxsize=64)
def _font(size: float, weight: str) -> FontProperties:
    return FontProperties(size=size, weight=weight)


def lines(text: str, room: float, size: float, weight: str = "normal") -> list[str]:
    """`text` wrapped at word breaks into lines at most `room` inches wide (a word longer than a
    line is broken where it must); its own line breaks kept. Nothing is cut."""
    out = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split():
            trial = f"{line} {word}" if line else word
            if width(trial, size, weight) <= room:
                line = trial
                continue
            if line:
                out.append(line)
            while len(word) > 1 and width(word, size, weight) > room:
                k = _fitting(word, room, size, weight, "")
                out.append(word[:k])
                word = word[k:]
            line = word
        out.append(line)
    return out


def balanced(text: str, room: float, size: float, weight: str = "normal") -> list[str]:
    """`text` in as few lines as `lines` gives within `room`, but as even as they can be (no
    last line of one word): the narrowest width that still needs no more lines."""
    most = lines(text, room, size, weight)
    if len(most) < 2:
        return most
    lo, hi = room / len(most), room
    while hi - lo > 0.02:
        mid = (lo + hi) / 2
        if len(lines(text, mid, size, weight)) <= len(most):
            hi = mid
        else:
            lo = mid
    return lines(text, hi, size, weight)


def one_line(text: str, room: float, size: float, weight: str = "normal") -> str:
    """`text` on one line at most `room` inches wide: whole when it fits, else cut with "…"."""
    if width(text, size, weight) <= room:
        return text
    return text[:_fitting(text, room, size, weight, ELLIPSIS)].rstrip() + ELLIPSIS


def _fitting(text: str, room: float, size: float, weight: str, tail: str) -> int:
    """The most leading characters of `text` that fit in `room` with `tail` after them (at least 1)."""
    lo, hi = 1, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if width(text[:mid] + tail, size, weight) <= room:
            lo = mid
        else:
            hi = mid - 1
    return lo
