#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""make_fixtures.py - writes the PNG fixtures of tests/unit/test_composite.c.

Run only on purpose (the test pins their decoded pixels by sha256):
    /usr/bin/python3 tests/data/postproc/make_fixtures.py
Standard library only. Writes, next to this script:
  cutout_small.png   96x48 RGBA (colour type 6): a small car-like cutout with
                     antialiased edges, transparent padding, windows, wheels
  logo_small.png     24x12 RGBA: opaque, transparent and half-transparent pixels
  rgb_small.png      16x8 RGB (colour type 2, no alpha: decodes with alpha 255)
and prints the sha256 of each one's RGBA pixels as the decoder must give them.
"""
import hashlib
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def png(path, w, h, ctype, rows):
    def chunk(kind, data):
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes(r) for r in rows)
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, ctype, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    with open(os.path.join(HERE, path), "wb") as f:
        f.write(data)


def cutout():
    w, h = 96, 48
    rows, rgba = [], b""
    for y in range(h):
        row = []
        for x in range(w):
            cov, col = 0, (0, 0, 0)
            # 4x4 samples: body, cabin, wheels
            hits = {"body": 0, "glass": 0, "tyre": 0}
            for j in range(4):
                for i in range(4):
                    px, py = x + (i + 0.5) / 4, y + (j + 0.5) / 4
                    wheel = any((px - cx) ** 2 + (py - 38) ** 2 <= 7.5 ** 2 for cx in (26, 70))
                    body = 10 <= px <= 86 and 22 <= py <= 38
                    cabin = 28 + (30 - py) * 0.6 <= px <= 68 - (30 - py) * 0.4 and 10 <= py < 22
                    if wheel:
                        hits["tyre"] += 1
                    elif body:
                        hits["body"] += 1
                    elif cabin:
                        hits["glass"] += 1
            cov = sum(hits.values())
            if cov:
                kind = max(hits, key=hits.get)
                if kind == "tyre":
                    col = (24, 24, 26)
                elif kind == "glass":
                    col = (50 + y, 62 + y, 80 + y)
                else:
                    shade = 1.15 - 0.5 * (y - 22) / 16
                    col = tuple(min(255, int(c * shade)) for c in (200, 22, 28))
                    if 24 <= y <= 25:
                        col = (250, 190, 190)
            a = (cov * 255 + 8) // 16
            px = (col[0], col[1], col[2], a) if a else (0, 0, 0, 0)
            row += px
        rows.append(row)
        rgba += bytes(row)
    png("cutout_small.png", w, h, 6, rows)
    return rgba


def logo():
    w, h = 24, 12
    rows, rgba = [], b""
    for y in range(h):
        row = []
        for x in range(w):
            if x < 8:
                px = (230, 0, 18, 255)
            elif x < 16:
                px = (255, 255, 255, 255) if (x + y) % 2 else (0, 0, 0, 0)
            else:
                px = (0, 90, 200, 128)
            row += px
        rows.append(row)
        rgba += bytes(row)
    png("logo_small.png", w, h, 6, rows)
    return rgba


def rgb():
    w, h = 16, 8
    rows, rgba = [], b""
    for y in range(h):
        row, full = [], []
        for x in range(w):
            px = ((x * 16) & 255, (y * 32) & 255, (x * y * 7) & 255)
            row += px
            full += px + (255,)
        rows.append(row)
        rgba += bytes(full)
    png("rgb_small.png", w, h, 2, rows)
    return rgba


if __name__ == "__main__":
    for name, fn in (("cutout_small.png", cutout), ("logo_small.png", logo), ("rgb_small.png", rgb)):
        print(name, hashlib.sha256(fn()).hexdigest())
