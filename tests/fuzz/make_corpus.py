#!/usr/bin/python3
"""make_corpus.py - writes tests/fuzz/corpus/: small PNG and JPEG files, valid and hostile,
for the decode fuzz target (tests/fuzz/fuzz_decode.c) and its replay test.

Standard library only: PNGs are assembled chunk by chunk with zlib, JPEGs by a small
encoder below (baseline and progressive, grey, 4:4:4 and 4:2:0, restart intervals,
flat Huffman tables). Everything is deterministic: the same script writes the same
bytes, so the corpus in git can be regenerated and diffed.

A file's name says what the replay test expects of it:
  ok-*    decodes (tg_image_decode returns TG_OK)
  bad-*   is refused with an error message (and never crashes)
  any-*   either; only "no crash, no leak, bounded memory" is checked

  /usr/bin/python3 tests/fuzz/make_corpus.py [OUT_DIR]    (default tests/fuzz/corpus)
"""
import math
import os
import random
import struct
import sys
import zlib
from pathlib import Path

OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "corpus"
RNG = random.Random(20261125)

# ---- pixels ------------------------------------------------------------------------

def scene(w, h, seed=0):
    """RGB rows: a sky-to-ground gradient with a sun and some noise; lists of (r, g, b)."""
    r = random.Random(seed)
    rows = []
    for y in range(h):
        row = []
        for x in range(w):
            t = y / max(1, h - 1)
            cr = int(40 + 200 * t)
            cg = int(90 + 100 * (1 - t))
            cb = int(200 * (1 - t) + 30)
            if (x - w * 0.7) ** 2 + (y - h * 0.3) ** 2 < (min(w, h) * 0.15) ** 2:
                cr, cg, cb = 250, 220, 120
            n = r.randint(-6, 6)
            row.append(tuple(max(0, min(255, c + n)) for c in (cr, cg, cb)))
        rows.append(row)
    return rows


def grey_of(p):
    return (p[0] * 299 + p[1] * 587 + p[2] * 114) // 1000

# ---- PNG ---------------------------------------------------------------------------

PNG_SIG = b"\x89PNG\r\n\x1a\n"


def chunk(kind, data, crc=None):
    c = zlib.crc32(kind + data) & 0xFFFFFFFF if crc is None else crc
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", c)


def ihdr(w, h, depth, ctype, interlace=0):
    return chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, interlace))


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def filter_rows(raw_rows, bpp, filters):
    """Apply PNG filter types (cycling through @filters) to byte rows."""
    out = bytearray()
    prev = bytes(len(raw_rows[0])) if raw_rows else b""
    for i, row in enumerate(raw_rows):
        f = filters[i % len(filters)]
        out.append(f)
        for x, v in enumerate(row):
            a = row[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            pred = (0, a, b, (a + b) // 2, paeth(a, b, c))[f]
            out.append((v - pred) & 255)
        prev = row
    return bytes(out)


def pack_samples(samples, depth):
    """One row of samples (ints) at @depth bits into bytes."""
    if depth == 16:
        return b"".join(struct.pack(">H", s) for s in samples)
    if depth == 8:
        return bytes(samples)
    out, acc, nbits = bytearray(), 0, 0
    for s in samples:
        acc = (acc << depth) | s
        nbits += depth
        if nbits == 8:
            out.append(acc)
            acc, nbits = 0, 0
    if nbits:
        out.append(acc << (8 - nbits))
    return bytes(out)


def png_samples(rows, ctype, depth, x, y, palette_map=None):
    p = rows[y][x]
    scale16 = lambda v: v * 257
    if ctype == 0:
        g = grey_of(p)
        return [scale16(g)] if depth == 16 else [g >> (8 - depth)]
    if ctype == 2:
        return [scale16(c) for c in p] if depth == 16 else list(p)
    if ctype == 3:
        return [palette_map(p) % (1 << depth)]
    alpha = (x * 255 // max(1, len(rows[0]) - 1)) if (x + y) % 7 else 0
    if ctype == 4:
        g = grey_of(p)
        return [scale16(g), scale16(alpha)] if depth == 16 else [g, alpha]
    return [scale16(c) for c in (*p, alpha)] if depth == 16 else [*p, alpha]


CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2)]


def png_idat_raw(rows, ctype, depth, interlace, filters, palette_map=None):
    h, w = len(rows), len(rows[0])
    bpp = max(1, CHANNELS[ctype] * depth // 8)
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    out = b""
    for x0, y0, dx, dy in passes:
        xs = list(range(x0, w, dx))
        ys = list(range(y0, h, dy))
        if not xs or not ys:
            continue
        raw = []
        for y in ys:
            samples = []
            for x in xs:
                samples += png_samples(rows, ctype, depth, x, y, palette_map)
            raw.append(pack_samples(samples, depth))
        out += filter_rows(raw, bpp, filters)
    return out


def make_png(rows, ctype=2, depth=8, interlace=0, filters=(0, 1, 2, 3, 4), trns=False,
             extra=b"", level=9):
    w, h = len(rows[0]), len(rows)
    body = ihdr(w, h, depth, ctype, interlace) + extra
    pmap = None
    if ctype == 3:
        n = 1 << depth
        pal = [(i * 255 // max(1, n - 1), (i * 97) % 256, 255 - i * 255 // max(1, n - 1))
               for i in range(n)]
        body += chunk(b"PLTE", b"".join(bytes(c) for c in pal))
        if trns:
            body += chunk(b"tRNS", bytes((i * 53) % 256 for i in range(n)))
        pmap = lambda p: grey_of(p) * n // 256
    elif trns and ctype == 2:
        body += chunk(b"tRNS", struct.pack(">HHH", *rows[0][0]))
    elif trns and ctype == 0:
        body += chunk(b"tRNS", struct.pack(">H", grey_of(rows[0][0]) >> (8 - min(8, depth))))
    raw = png_idat_raw(rows, ctype, depth, interlace, filters, pmap)
    return PNG_SIG + body + chunk(b"IDAT", zlib.compress(raw, level)) + chunk(b"IEND", b"")

# ---- JPEG --------------------------------------------------------------------------

ZIGZAG = []
for s in range(15):
    rs = range(min(s, 7), max(0, s - 7) - 1, -1) if s % 2 == 0 else range(max(0, s - 7), min(s, 7) + 1)
    ZIGZAG += [(r, s - r) for r in rs]

BASE_Q = [  # a smooth quantisation table, natural order (not the Annex K one)
    [min(255, 4 + 3 * (u + v) + (u * v) // 2) for v in range(8)] for u in range(8)]
COS = [[math.cos((2 * x + 1) * u * math.pi / 16) for x in range(8)] for u in range(8)]
CU = [1 / math.sqrt(2)] + [1.0] * 7


def fdct(block):
    tmp = [[0.5 * CU[u] * sum(block[y][x] * COS[u][x] for x in range(8)) for u in range(8)]
           for y in range(8)]
    return [[0.5 * CU[v] * sum(tmp[y][u] * COS[v][y] for y in range(8)) for u in range(8)]
            for v in range(8)]


def marker(code, payload=b""):
    return bytes((0xFF, code)) + (struct.pack(">H", len(payload) + 2) + payload
                                  if payload is not None else b"")


class Bits:
    def __init__(self):
        self.out, self.acc, self.n = bytearray(), 0, 0

    def put(self, code, length):
        for i in range(length - 1, -1, -1):
            self.acc = (self.acc << 1) | ((code >> i) & 1)
            self.n += 1
            if self.n == 8:
                self.out.append(self.acc)
                if self.acc == 0xFF:
                    self.out.append(0)
                self.acc, self.n = 0, 0

    def align(self):
        if self.n:
            self.put((1 << (8 - self.n)) - 1, 8 - self.n)


def huff_table(lengths):
    """{symbol: (code, length)} from a {length: [symbols]} spec (JPEG Annex C)."""
    codes, code = {}, 0
    for length in range(1, 17):
        for sym in lengths.get(length, []):
            codes[sym] = (code, length)
            code += 1
        code <<= 1
    return codes


DC_SYMS = list(range(12))
AC_SYMS = [0x00, 0xF0] + [(r << 4) | s for r in range(16) for s in range(1, 11)]
DC_SPEC = {4: DC_SYMS}      # 12 codes of 4 bits
AC_SPEC = {8: AC_SYMS}      # 162 codes of 8 bits: valid, if not compact
DC_CODES, AC_CODES = huff_table(DC_SPEC), huff_table(AC_SPEC)


def dht(tc, th, spec):
    counts = bytes(len(spec.get(i, [])) for i in range(1, 17))
    syms = bytes(s for i in range(1, 17) for s in spec.get(i, []))
    return marker(0xC4, bytes([(tc << 4) | th]) + counts + syms)


def magnitude(v):
    s = abs(v).bit_length()
    return s, (v if v >= 0 else v + (1 << s) - 1)


def put_dc(bits, diff):
    s, v = magnitude(diff)
    bits.put(*DC_CODES[s])
    if s:
        bits.put(v, s)


def put_ac(bits, zz):
    run = 0
    for k in range(1, 64):
        c = zz[k]
        if c == 0:
            run += 1
            continue
        while run > 15:
            bits.put(*AC_CODES[0xF0])
            run -= 16
        s, v = magnitude(c)
        bits.put(*AC_CODES[(run << 4) | s])
        bits.put(v, s)
        run = 0
    if run:
        bits.put(*AC_CODES[0x00])


def make_jpeg(rows, ncomp=3, sampling=(2, 2), quality=1, progressive=False, restart=0,
              sof_dims=None):
    """Encode RGB rows; quality scales BASE_Q (1 = as is). sof_dims overrides the header."""
    h, w = len(rows), len(rows[0])
    if ncomp == 1:
        planes = [[[grey_of(p) for p in row] for row in rows]]
        factors = [(1, 1)]
    else:
        ycc = [[(0.299 * r + 0.587 * g + 0.114 * b,
                 128 - 0.168736 * r - 0.331264 * g + 0.5 * b,
                 128 + 0.5 * r - 0.418688 * g - 0.081312 * b) for r, g, b in row] for row in rows]
        planes = [[[p[c] for p in row] for row in ycc] for c in range(3)]
        factors = [sampling, (1, 1), (1, 1)]
    hmax = max(f[0] for f in factors)
    vmax = max(f[1] for f in factors)
    q = [[max(1, min(255, int(BASE_Q[u][v] * quality))) for v in range(8)] for u in range(8)]

    comps = []
    for c, (hf, vf) in enumerate(factors):
        cw, ch = -(-w * hf // hmax), -(-h * vf // vmax)
        sx, sy = hmax // hf, vmax // vf
        plane = [[sum(planes[c][min(h - 1, y * sy + j)][min(w - 1, x * sx + i)]
                      for j in range(sy) for i in range(sx)) / (sx * sy)
                  for x in range(cw)] for y in range(ch)]
        comps.append({"w": cw, "h": ch, "hf": hf, "vf": vf, "plane": plane, "blocks": {}})

    def block(comp, bx, by):
        key = (bx, by)
        if key not in comp["blocks"]:
            p = comp["plane"]
            pix = [[p[min(comp["h"] - 1, by * 8 + y)][min(comp["w"] - 1, bx * 8 + x)] - 128
                    for x in range(8)] for y in range(8)]
            f = fdct(pix)
            comp["blocks"][key] = [int(round(f[r][c] / q[r][c])) for r, c in ZIGZAG]
        return comp["blocks"][key]

    mcux, mcuy = -(-w // (8 * hmax)), -(-h // (8 * vmax))
    out = bytearray(marker(0xD8, None))
    out += marker(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0")
    out += marker(0xDB, bytes([0]) + bytes(q[r][c] for r, c in ZIGZAG))
    sw, sh = sof_dims or (w, h)
    sof = struct.pack(">BHHB", 8, sh, sw, len(comps))
    for i, c in enumerate(comps):
        sof += bytes([i + 1, (c["hf"] << 4) | c["vf"], 0])
    out += marker(0xC2 if progressive else 0xC0, sof)
    out += dht(0, 0, DC_SPEC) + dht(1, 0, AC_SPEC)
    if restart:
        out += marker(0xDD, struct.pack(">H", restart))

    def scan(comp_ids, ss, se, units, code_unit):
        sos = bytes([len(comp_ids)])
        for i in comp_ids:
            sos += bytes([i + 1, 0x00])
        sos += bytes([ss, se, 0])
        data = bytearray(marker(0xDA, sos))
        bits, pred, rst = Bits(), [0] * len(comps), 0
        for n, unit in enumerate(units):
            if restart and n and n % restart == 0:
                bits.align()
                bits.out += bytes((0xFF, 0xD0 + rst))
                rst = (rst + 1) % 8
                pred = [0] * len(comps)
            code_unit(bits, unit, pred)
        bits.align()
        return data + bits.out

    interleaved = len(comps) > 1
    mcus = [(mx, my) for my in range(mcuy) for mx in range(mcux)]

    def mcu_blocks(mx, my):
        for ci, c in enumerate(comps):
            bxs = range(mx * c["hf"], mx * c["hf"] + c["hf"]) if interleaved else [mx]
            bys = range(my * c["vf"], my * c["vf"] + c["vf"]) if interleaved else [my]
            for by in bys:
                for bx in bxs:
                    yield ci, block(c, bx, by)

    if not interleaved:  # one component: units are its own 8x8 blocks
        c0 = comps[0]
        mcus = [(bx, by) for by in range(-(-c0["h"] // 8)) for bx in range(-(-c0["w"] // 8))]

    def code_dc(bits, unit, pred):
        for ci, zz in mcu_blocks(*unit):
            put_dc(bits, zz[0] - pred[ci])
            pred[ci] = zz[0]

    def code_full(bits, unit, pred):
        for ci, zz in mcu_blocks(*unit):
            put_dc(bits, zz[0] - pred[ci])
            pred[ci] = zz[0]
            put_ac(bits, zz)

    if not progressive:
        out += scan(list(range(len(comps))), 0, 63, mcus, code_full)
    else:
        out += scan(list(range(len(comps))), 0, 0, mcus, code_dc)
        for ci, c in enumerate(comps):
            units = [(bx, by) for by in range(-(-c["h"] // 8)) for bx in range(-(-c["w"] // 8))]
            out += scan([ci], 1, 63, units,
                        lambda bits, u, pred, c=c: put_ac(bits, block(c, u[0], u[1])))
    out += marker(0xD9, None)
    return bytes(out)


def sof_offset(jpeg):
    """Offset of the SOF marker's payload (after the length)."""
    i = 2
    while i < len(jpeg):
        code = jpeg[i + 1]
        if code in (0xC0, 0xC1, 0xC2):
            return i + 4
        i += 2 + struct.unpack(">H", jpeg[i + 2:i + 4])[0]
    raise ValueError("no SOF")

# ---- the corpus --------------------------------------------------------------------

def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for f in OUT.iterdir():
        f.unlink()
    files = {}
    small = scene(24, 17, 1)
    tiny = scene(5, 3, 2)

    # valid PNGs: every colour type and bit depth, filters, interlacing, tRNS
    for ctype, depths in ((0, (1, 2, 4, 8, 16)), (2, (8, 16)), (3, (1, 2, 4, 8)), (4, (8, 16)),
                          (6, (8, 16))):
        for d in depths:
            name = "ok-png-c%d-d%d" % (ctype, d)
            files[name + ".png"] = make_png(small, ctype, d)
            files[name + "-adam7.png"] = make_png(small, ctype, d, interlace=1)
    files["ok-png-c3-d8-trns.png"] = make_png(small, 3, 8, trns=True)
    files["ok-png-c2-d8-trns.png"] = make_png(small, 2, 8, trns=True)
    files["ok-png-c0-d4-trns.png"] = make_png(small, 0, 4, trns=True)
    files["ok-png-1x1.png"] = make_png([[(1, 2, 3)]])
    files["ok-png-tiny-adam7.png"] = make_png(tiny, 6, 8, interlace=1)
    files["ok-png-paeth.png"] = make_png(small, 2, 8, filters=(4,))
    files["ok-png-stored.png"] = make_png(small, 2, 8, level=0)
    files["ok-png-64x64.png"] = make_png(scene(64, 64, 3), 2, 8)
    base = files["ok-png-c2-d8.png"]
    iend = base[-12:]
    parts = base[:-12]
    # ancillary chunks: text, a bad-CRC ancillary chunk (dropped), an unknown safe-to-copy one
    files["ok-png-text.png"] = (parts[:33] + chunk(b"tEXt", b"Comment\0tripgen corpus")
                                + parts[33:] + iend)
    files["ok-png-bad-ancillary-crc.png"] = (parts[:33] + chunk(b"tEXt", b"a\0b", crc=1)
                                             + parts[33:] + iend)
    files["ok-png-unknown-chunk.png"] = parts[:33] + chunk(b"tgEn", b"\1" * 40) + parts[33:] + iend
    # a zTXt that inflates to 24 MiB (over the 8 MiB ancillary-chunk bound): dropped
    bomb = zlib.compress(b"\0" * (24 << 20), 9)
    files["any-png-ztxt-bomb.png"] = parts[:33] + chunk(b"zTXt", b"k\0\0" + bomb) + parts[33:] + iend
    # an iCCP profile that inflates to 24 MiB
    files["any-png-iccp-bomb.png"] = parts[:33] + chunk(b"iCCP", b"p\0\0" + bomb) + parts[33:] + iend
    # IDAT that inflates to far more than the image needs
    raw = filter_rows([bytes(3 * 24)] * 17, 3, (0,)) + b"\0" * (16 << 20)
    files["any-png-idat-bomb.png"] = (PNG_SIG + ihdr(24, 17, 8, 2)
                                      + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    # the IDAT split into many small chunks
    z = zlib.compress(png_idat_raw(small, 2, 8, 0, (1,)), 9)
    split = b"".join(chunk(b"IDAT", z[i:i + 7]) for i in range(0, len(z), 7))
    files["ok-png-split-idat.png"] = PNG_SIG + ihdr(24, 17, 8, 2) + split + chunk(b"IEND", b"")

    # hostile PNGs
    files["bad-png-signature-only.png"] = PNG_SIG
    for cut in (12, 20, 33, 45, len(base) // 2, len(base) - 13):
        files["bad-png-truncated-%d.png" % cut] = base[:cut]
    # every pixel is there, only IEND is cut short (the decoder never reads IEND)
    files["any-png-truncated-in-iend.png"] = base[:-1]
    tiny_idat = chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")
    for w, h in ((0, 0), (0, 16), (16, 0), (40000, 40000), (4097, 1), (1, 4097), (4096, 4097),
                 (0x7FFFFFFF, 0x7FFFFFFF), (0x80000000, 1), (0xFFFFFFFF, 0xFFFFFFFF)):
        files["bad-png-%dx%d.png" % (w, h)] = PNG_SIG + ihdr(w, h, 8, 2) + tiny_idat
    files["bad-png-40000x40000-rgba16.png"] = PNG_SIG + ihdr(40000, 40000, 16, 6) + tiny_idat
    files["bad-png-4096x4096-short-idat.png"] = PNG_SIG + ihdr(4096, 4096, 8, 2) + tiny_idat
    files["bad-png-ihdr-crc.png"] = PNG_SIG + chunk(b"IHDR", base[16:29], crc=0) + base[33:]
    files["bad-png-no-idat.png"] = PNG_SIG + ihdr(8, 8, 8, 2) + chunk(b"IEND", b"")
    files["bad-png-short-idat.png"] = (PNG_SIG + ihdr(24, 17, 8, 2)
                                       + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))
    files["bad-png-bad-filter.png"] = (PNG_SIG + ihdr(4, 4, 8, 2)
                                       + chunk(b"IDAT", zlib.compress((b"\x05" + b"\0" * 12) * 4))
                                       + chunk(b"IEND", b""))
    files["bad-png-bad-zlib.png"] = (PNG_SIG + ihdr(4, 4, 8, 2) + chunk(b"IDAT", b"\x78\x9c\xff\xff\xff")
                                     + chunk(b"IEND", b""))
    for d, ct in ((4, 2), (3, 0), (16, 3), (8, 5), (8, 1), (0, 0)):
        files["bad-png-depth%d-ctype%d.png" % (d, ct)] = PNG_SIG + ihdr(4, 4, d, ct) + tiny_idat
    files["bad-png-palette-missing.png"] = (PNG_SIG + ihdr(4, 4, 8, 3)
                                            + chunk(b"IDAT", zlib.compress(b"\0" * 20)) + chunk(b"IEND", b""))
    files["bad-png-interlace-2.png"] = PNG_SIG + ihdr(4, 4, 8, 2, 2) + tiny_idat
    # ancillary chunks claiming ~2 GiB with a few bytes present (libpng allocates the claim)
    for kind in (b"tEXt", b"zTXt", b"iCCP", b"tgEn"):
        files["bad-png-%s-length-huge.png" % kind.decode()] = (
            PNG_SIG + ihdr(4, 4, 8, 2) + struct.pack(">I", 0x7FFFFFF0) + kind + b"x" * 32)
    files["any-png-palette-index-out-of-range.png"] = (
        PNG_SIG + ihdr(4, 4, 8, 3) + chunk(b"PLTE", b"\0\0\0\xff\xff\xff")
        + chunk(b"IDAT", zlib.compress(b"\0\xc8\xc8\xc8\xc8" * 4)) + chunk(b"IEND", b""))

    # valid JPEGs
    jsmall = scene(37, 21, 4)
    files["ok-jpeg-420.jpg"] = make_jpeg(jsmall)
    files["ok-jpeg-444.jpg"] = make_jpeg(jsmall, sampling=(1, 1))
    files["ok-jpeg-422.jpg"] = make_jpeg(jsmall, sampling=(2, 1))
    files["ok-jpeg-grey.jpg"] = make_jpeg(jsmall, ncomp=1)
    files["ok-jpeg-progressive.jpg"] = make_jpeg(jsmall, progressive=True)
    files["ok-jpeg-progressive-grey.jpg"] = make_jpeg(jsmall, ncomp=1, progressive=True)
    files["ok-jpeg-restart.jpg"] = make_jpeg(jsmall, restart=2)
    files["ok-jpeg-progressive-restart.jpg"] = make_jpeg(jsmall, progressive=True, restart=3)
    files["ok-jpeg-1x1.jpg"] = make_jpeg([[(200, 10, 10)]])
    files["ok-jpeg-64x48.jpg"] = make_jpeg(scene(64, 48, 5), quality=2)
    jbase = files["ok-jpeg-420.jpg"]
    at = sof_offset(jbase)

    # hostile JPEGs
    def with_dims(j, w, h):
        o = sof_offset(j)
        return j[:o + 1] + struct.pack(">HH", h, w) + j[o + 5:]
    for w, h in ((40000, 40000), (65535, 65535), (4097, 8), (8, 4097), (4096, 4097)):
        files["bad-jpeg-%dx%d.jpg" % (w, h)] = with_dims(jbase, w, h)
        files["bad-jpeg-progressive-%dx%d.jpg" % (w, h)] = with_dims(
            files["ok-jpeg-progressive.jpg"], w, h)
    files["bad-jpeg-0-height.jpg"] = with_dims(jbase, 37, 0)
    files["bad-jpeg-0-width.jpg"] = with_dims(jbase, 0, 21)
    files["bad-jpeg-soi-only.jpg"] = b"\xff\xd8"
    files["bad-jpeg-soi-marker-only.jpg"] = b"\xff\xd8\xff"
    files["bad-jpeg-soi-garbage.jpg"] = b"\xff\xd8\xff" + bytes(RNG.randrange(256) for _ in range(300))
    files["bad-jpeg-soi-then-random.jpg"] = b"\xff\xd8" + bytes(RNG.randrange(256) for _ in range(300))
    for cut in (20, at + 2, at + 12, len(jbase) // 2, len(jbase) - 2):
        files["bad-jpeg-truncated-%d.jpg" % cut] = jbase[:cut]
    files["bad-jpeg-progressive-truncated.jpg"] = files["ok-jpeg-progressive.jpg"][:-40]
    files["bad-jpeg-precision12.jpg"] = jbase[:at] + b"\x0c" + jbase[at + 1:]
    files["bad-jpeg-precision0.jpg"] = jbase[:at] + b"\x00" + jbase[at + 1:]
    files["bad-jpeg-sampling-0.jpg"] = jbase[:at + 7] + b"\x00" + jbase[at + 8:]
    files["bad-jpeg-sampling-5.jpg"] = jbase[:at + 7] + b"\x55" + jbase[at + 8:]
    files["bad-jpeg-quant-table-3.jpg"] = jbase[:at + 8] + b"\x03" + jbase[at + 9:]
    files["bad-jpeg-ncomp-0.jpg"] = jbase[:at + 5] + b"\x00" + jbase[at + 6:]
    sos = jbase.index(b"\xff\xda")
    files["bad-jpeg-sos-table-9.jpg"] = jbase[:sos + 6] + b"\x99" + jbase[sos + 7:]
    files["bad-jpeg-no-sof.jpg"] = jbase[:at - 4] + jbase[at - 4 + 2 + struct.unpack(">H", jbase[at - 2:at])[0]:]
    dht_at = jbase.index(b"\xff\xc4")
    files["bad-jpeg-no-dht.jpg"] = jbase[:dht_at] + jbase[sos:]
    files["bad-jpeg-eoi-early.jpg"] = jbase[:sos] + b"\xff\xd9"
    files["bad-jpeg-scan-garbage.jpg"] = (jbase[:sos + 14]
                                          + bytes(RNG.randrange(256) for _ in range(200)) + b"\xff\xd9")
    # a progressive file with 600 scans of the DC band
    p = files["ok-jpeg-progressive-grey.jpg"]
    psos = p.index(b"\xff\xda")
    dc_scan_end = p.index(b"\xff\xda", psos + 2)
    files["bad-jpeg-600-scans.jpg"] = p[:dc_scan_end] + p[psos:dc_scan_end] * 600 + b"\xff\xd9"
    # APP1 segments before the frame: skipped
    app = marker(0xE1, b"Exif\0\0" + b"\0" * 4000)
    files["ok-jpeg-big-app1.jpg"] = jbase[:2] + app * 4 + jbase[2:]

    # neither
    files["bad-empty.bin"] = b""
    files["bad-one-byte.bin"] = b"\x89"
    files["bad-gif.gif"] = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00,"
    files["bad-png-sig-7.bin"] = PNG_SIG[:7]
    for i in range(4):
        files["bad-random-%d.bin" % i] = bytes(RNG.randrange(256) for _ in range(64 << i))

    for name, data in sorted(files.items()):
        (OUT / name).write_bytes(data)
    total = sum(len(d) for d in files.values())
    print("make_corpus: %d files, %d bytes in %s" % (len(files), total, OUT))


if __name__ == "__main__":
    main()
