"""The certificate PNG (Pillow), with a QR code (segno) pointing at its public verify page.

Chinese needs a CJK font, which no Python wheel here ships in a usable size: the renderer uses
Debian's ``fonts-wqy-microhei`` (installed by ``.ci/run``; ``apt-get install fonts-wqy-microhei``
on a server), or any font ``fc-match :lang=zh`` names.  Without one, issuing a certificate is a
clear 503 naming the package, instead of a PNG of empty boxes.

Rendering is CPU work (tens of milliseconds: loadtest/README.md, "Figures behind the code"):
callers run it in a thread, never on the event loop.
"""

from __future__ import annotations

import functools
import io
import os
import shutil
import subprocess
from dataclasses import dataclass

import segno
from PIL import Image, ImageDraw, ImageFont

__all__ = ["CertificateText", "FontMissing", "find_cjk_font", "render_certificate"]

_KNOWN_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
)
_WIDTH, _HEIGHT = 900, 1260
_INK, _RED, _GOLD, _PAPER = (40, 30, 20), (176, 32, 32), (196, 152, 64), (253, 248, 236)


class FontMissing(RuntimeError):
    """No CJK font on this machine."""


@functools.cache
def find_cjk_font() -> str:
    """The path of a font with Chinese glyphs; FontMissing naming the package to install."""
    for path in _KNOWN_FONTS:
        if os.path.isfile(path):
            return path
    if shutil.which("fc-match"):
        found = subprocess.run(["fc-match", "-f", "%{file}", ":lang=zh"], capture_output=True, text=True,
                               timeout=5, check=False).stdout.strip()
        if found and os.path.isfile(found):
            return found
    raise FontMissing("证书需要中文字体：apt-get install fonts-wqy-microhei (bash .ci/run installs it)"
                      " / no CJK font for certificates")


@dataclass(frozen=True, slots=True)
class CertificateText:
    title: str  # 荣誉证书
    name: str
    unit: str
    contest: str
    score: int
    rank: int | None
    date: str  # YYYY年M月D日
    serial: str
    verify_url: str


def _centered(draw: ImageDraw.ImageDraw, y: int, text: str, font: ImageFont.FreeTypeFont,
              fill: tuple[int, int, int]) -> int:
    """Draw ``text`` centred at ``y``, shrinking the font when the line would not fit; the next y."""
    size = font.size
    while draw.textlength(text, font=font) > _WIDTH - 160 and size > 18:
        size -= 2
        font = font.font_variant(size=size)
    width = draw.textlength(text, font=font)
    draw.text(((_WIDTH - width) / 2, y), text, font=font, fill=fill)
    return y + int(size * 1.5)


def render_certificate(text: CertificateText, font_path: str | None = None) -> bytes:
    """The certificate as PNG bytes."""
    path = font_path or find_cjk_font()
    image = Image.new("RGB", (_WIDTH, _HEIGHT), _PAPER)
    draw = ImageDraw.Draw(image)
    draw.rectangle((24, 24, _WIDTH - 24, _HEIGHT - 24), outline=_GOLD, width=6)
    draw.rectangle((40, 40, _WIDTH - 40, _HEIGHT - 40), outline=_RED, width=2)
    big = ImageFont.truetype(path, 76)
    mid = ImageFont.truetype(path, 40)
    body = ImageFont.truetype(path, 32)
    small = ImageFont.truetype(path, 22)
    y = _centered(draw, 110, text.title, big, _RED)
    y = _centered(draw, y + 40, text.name, mid, _INK)
    y = _centered(draw, y, text.unit, body, _INK)
    y = _centered(draw, y + 30, f"在「{text.contest}」中", body, _INK)
    rank = f"，排名第 {text.rank} 名" if text.rank else ""
    y = _centered(draw, y, f"获得 {text.score} 分{rank}", body, _INK)
    y = _centered(draw, y, "特发此证，以资鼓励。", body, _INK)
    qr = segno.make(text.verify_url, error="m")
    buffer = io.BytesIO()
    qr.save(buffer, kind="png", scale=6, border=2)
    buffer.seek(0)
    code = Image.open(buffer).convert("RGB")
    side = min(code.width, 300)
    code = code.resize((side, side), Image.Resampling.NEAREST)
    qr_top = max(y + 30, _HEIGHT - 180 - side)
    image.paste(code, ((_WIDTH - side) // 2, qr_top))
    y = _centered(draw, qr_top + side + 12, "扫码验证证书真伪", small, _INK)
    _centered(draw, y, f"编号 {text.serial}    {text.date}", small, _INK)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
