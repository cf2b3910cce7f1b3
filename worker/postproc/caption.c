/* SPDX-License-Identifier: Apache-2.0 */
/*
 * caption.c - draws the caption band: a translucent black band across the
 * bottom of an RGB8 image and lines of white text on it. Each line is
 * shaped by HarfBuzz (hb-ft over the FreeType face, so advances and glyph
 * ids come from the same face that renders), rasterised by FreeType as
 * 8-bit antialiased coverage and alpha-blended towards white. A line wider
 * than the text area is cut at a cluster boundary (never inside a
 * character or a ligature), trailing spaces dropped, "…" appended, and
 * shaped again; lines beyond the band's height are dropped. Every glyph is
 * clipped to the text area, so pixels outside the band never change.
 *
 * Thread-safety: FreeType faces and hb-ft fonts must not be used by two
 * threads at once, and post-process threads share one handle, so each draw
 * holds the handle's mutex from the first shape to the last blit. Rendered
 * glyphs are cached per handle (by glyph id, up to CACHE_MAX of them), so a
 * draw mostly shapes and copies coverage; that keeps the critical section
 * short, which is why one shared face wins over opening a face per call.
 */
#include "caption.h"

#include <ft2build.h>
#include FT_FREETYPE_H
#include FT_TRUETYPE_TABLES_H
#include <hb-ft.h>
#include <hb.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ELLIPSIS "\xe2\x80\xa6" /* U+2026 */
#define CACHE_SLOTS 2048        /* power of two */
#define CACHE_MAX (CACHE_SLOTS * 3 / 4)

/* One rendered glyph: 8-bit coverage, rows top to bottom, stride w. */
struct glyph_bm {
  bool used;
  unsigned gid;
  int left, top; /* bitmap origin relative to the pen, y up (FreeType's bitmap_left/top) */
  int w, h;
  unsigned char *bits;
};

struct tg_caption_s {
  pthread_mutex_t mu;
  FT_Library lib;
  FT_Face face;
  hb_font_t *font;
  hb_buffer_t *buf;
  int font_px;
  int ascent_px;        /* baseline below the top of the em box */
  hb_position_t ell_adv; /* advance of "…", 26.6 */
  size_t n_cached;
  struct glyph_bm cache[CACHE_SLOTS];
};

/* floor(v / 64 + 0.5) for 26.6 values of either sign */
static int round26(hb_position_t v) {
  int64_t x = (int64_t)v + 32;
  return (int)(x >= 0 ? x / 64 : -((-x + 63) / 64));
}

/* Shapes @text (@len bytes) into c->buf. */
static void shape(tg_caption_t *c, const char *text, int len) {
  hb_buffer_clear_contents(c->buf);
  hb_buffer_add_utf8(c->buf, text, len, 0, len);
  hb_buffer_set_direction(c->buf, HB_DIRECTION_LTR);
  hb_buffer_set_language(c->buf, hb_language_from_string("zh-Hans", -1));
  hb_buffer_guess_segment_properties(c->buf);
  hb_shape(c->font, c->buf, NULL, 0);
}

static hb_position_t buf_width(hb_buffer_t *buf) {
  unsigned n = 0;
  hb_glyph_position_t *pos = hb_buffer_get_glyph_positions(buf, &n);
  hb_position_t w = 0;
  for (unsigned i = 0; i < n; i++)
    w += pos[i].x_advance;
  return w;
}

tg_caption_t *tg_caption_create(const char *font_file, int font_px, char *errstr, size_t n) {
  tg_caption_t *c;
  FILE *f;
  FT_Error fe;
  TT_OS2 *os2;
  long asc, desc;

  if (!font_file || !*font_file) {
    snprintf(errstr, n, "postproc.font_file: no caption font configured");
    return NULL;
  }
  if (font_px < 1 || font_px > 1000) {
    snprintf(errstr, n, "postproc.caption_font_px: %d is outside 1..1000", font_px);
    return NULL;
  }
  f = fopen(font_file, "rb"); /* for a clear reason when it is missing or unreadable */
  if (!f) {
    snprintf(errstr, n, "postproc.font_file: cannot open caption font '%s': %s", font_file,
             strerror(errno));
    return NULL;
  }
  fclose(f);

  c = calloc(1, sizeof(*c));
  if (!c) {
    snprintf(errstr, n, "caption: out of memory");
    return NULL;
  }
  if (pthread_mutex_init(&c->mu, NULL) != 0) {
    free(c);
    snprintf(errstr, n, "caption: cannot create a mutex");
    return NULL;
  }
  c->font_px = font_px;
  if ((fe = FT_Init_FreeType(&c->lib)) != 0) {
    snprintf(errstr, n, "caption: FreeType initialisation failed (error %d)", fe);
    goto err;
  }
  if ((fe = FT_New_Face(c->lib, font_file, 0, &c->face)) != 0) {
    snprintf(errstr, n,
             "postproc.font_file: '%s' is not a font FreeType can read (FreeType error 0x%02x)",
             font_file, (unsigned)fe);
    goto err;
  }
  if (!FT_IS_SCALABLE(c->face) || FT_Select_Charmap(c->face, FT_ENCODING_UNICODE) != 0) {
    snprintf(errstr, n, "postproc.font_file: '%s' is not a scalable font with a Unicode map",
             font_file);
    goto err;
  }
  if ((fe = FT_Set_Pixel_Sizes(c->face, 0, (FT_UInt)font_px)) != 0) {
    snprintf(errstr, n, "postproc.font_file: '%s' cannot be set to %d px (FreeType error 0x%02x)",
             font_file, font_px, (unsigned)fe);
    goto err;
  }

  /* the em box [typo descender, typo ascender] maps onto font_px pixels */
  os2 = FT_Get_Sfnt_Table(c->face, FT_SFNT_OS2);
  if (os2 && os2->version != 0xFFFF && os2->sTypoAscender > 0 &&
      os2->sTypoAscender - os2->sTypoDescender > 0) {
    asc = os2->sTypoAscender;
    desc = os2->sTypoDescender;
  } else {
    asc = c->face->ascender;
    desc = c->face->descender;
  }
  if (asc - desc <= 0) {
    asc = 4;
    desc = -1;
  }
  c->ascent_px = (int)((font_px * asc * 2 + (asc - desc)) / (2 * (asc - desc)));

  c->font = hb_ft_font_create_referenced(c->face);
  c->buf = hb_buffer_create();
  if (!c->font || !hb_buffer_allocation_successful(c->buf)) {
    snprintf(errstr, n, "caption: out of memory");
    goto err;
  }
  shape(c, ELLIPSIS, (int)strlen(ELLIPSIS));
  c->ell_adv = buf_width(c->buf);
  return c;

err:
  tg_caption_destroy(c);
  return NULL;
}

void tg_caption_destroy(tg_caption_t *c) {
  if (!c)
    return;
  for (size_t i = 0; i < CACHE_SLOTS; i++)
    free(c->cache[i].bits);
  if (c->buf)
    hb_buffer_destroy(c->buf);
  if (c->font)
    hb_font_destroy(c->font); /* drops its reference on the face */
  if (c->face)
    FT_Done_Face(c->face);
  if (c->lib)
    FT_Done_FreeType(c->lib);
  pthread_mutex_destroy(&c->mu);
  free(c);
}

/* Copies the face's rendered glyph slot into @g; false when it has no usable bitmap. */
static bool copy_slot(FT_GlyphSlot slot, struct glyph_bm *g) {
  const FT_Bitmap *bm = &slot->bitmap;
  const unsigned char *row0 = bm->buffer;
  int pitch = bm->pitch;
  g->left = slot->bitmap_left;
  g->top = slot->bitmap_top;
  g->w = (int)bm->width;
  g->h = (int)bm->rows;
  g->bits = NULL;
  if (g->w == 0 || g->h == 0 || !row0)
    return true; /* a space */
  if (bm->pixel_mode != FT_PIXEL_MODE_GRAY && bm->pixel_mode != FT_PIXEL_MODE_MONO)
    return false;
  if (pitch < 0) /* bottom-up: the buffer starts with the bottom row */
    row0 -= (ptrdiff_t)pitch * (g->h - 1);
  g->bits = malloc((size_t)g->w * (size_t)g->h);
  if (!g->bits)
    return false;
  for (int y = 0; y < g->h; y++) {
    const unsigned char *src = row0 + (ptrdiff_t)pitch * y;
    unsigned char *dst = g->bits + (size_t)y * (size_t)g->w;
    if (bm->pixel_mode == FT_PIXEL_MODE_GRAY) {
      if (bm->num_grays == 256) {
        memcpy(dst, src, (size_t)g->w);
      } else {
        for (int x = 0; x < g->w; x++)
          dst[x] = (unsigned char)((src[x] * 255u + (bm->num_grays - 1) / 2) /
                                   (bm->num_grays - 1));
      }
    } else {
      for (int x = 0; x < g->w; x++)
        dst[x] = (src[x >> 3] & (0x80 >> (x & 7))) ? 255 : 0;
    }
  }
  return true;
}

/*
 * The rendered glyph @gid: from the cache, or rendered now and cached while
 * the cache has room; a glyph that is not cached is rendered into @tmp
 * (the caller frees tmp->bits). NULL when FreeType cannot render it.
 */
static const struct glyph_bm *get_glyph(tg_caption_t *c, unsigned gid, struct glyph_bm *tmp) {
  size_t slot = (gid * 2654435761u) & (CACHE_SLOTS - 1);
  struct glyph_bm *g;
  while (c->cache[slot].used) {
    if (c->cache[slot].gid == gid)
      return &c->cache[slot];
    slot = (slot + 1) & (CACHE_SLOTS - 1);
  }
  if (FT_Load_Glyph(c->face, gid, FT_LOAD_DEFAULT) != 0 ||
      FT_Render_Glyph(c->face->glyph, FT_RENDER_MODE_NORMAL) != 0)
    return NULL;
  g = c->n_cached < CACHE_MAX ? &c->cache[slot] : tmp;
  if (!copy_slot(c->face->glyph, g))
    return NULL;
  g->gid = gid;
  if (g != tmp) {
    g->used = true;
    c->n_cached++;
  }
  return g;
}

/* The pixel box glyphs may touch: [x0, x1) x [y0, y1). */
struct clip {
  int x0, y0, x1, y1;
};

/* Blends @g's coverage in white with its pen at (px, baseline). */
static void blit(struct tg_rgb_image *img, const struct clip *r, const struct glyph_bm *g, int px,
                 int baseline) {
  int gx = px + g->left, gy = baseline - g->top;
  int sx0 = r->x0 > gx ? r->x0 - gx : 0, sy0 = r->y0 > gy ? r->y0 - gy : 0;
  int sx1 = g->w, sy1 = g->h;
  if (!g->bits)
    return;
  if (gx + sx1 > r->x1)
    sx1 = r->x1 - gx;
  if (gy + sy1 > r->y1)
    sy1 = r->y1 - gy;
  for (int y = sy0; y < sy1; y++) {
    const unsigned char *cov = g->bits + (size_t)y * (size_t)g->w;
    unsigned char *p = img->rgb + ((size_t)(gy + y) * (size_t)img->width + (size_t)gx) * 3;
    for (int x = sx0; x < sx1; x++) {
      unsigned a = cov[x];
      if (!a)
        continue;
      for (int k = 0; k < 3; k++) {
        unsigned v = p[3 * x + k];
        p[3 * x + k] = (unsigned char)(v + ((255u - v) * a + 127u) / 255u);
      }
    }
  }
}

/*
 * Draws the glyphs in c->buf from pen x @x0 on @baseline. Glyphs the font
 * lacks (.notdef) and glyphs FreeType cannot render are counted in @missing.
 */
static void draw_buf(tg_caption_t *c, struct tg_rgb_image *img, const struct clip *r, int x0,
                     int baseline, int *missing) {
  unsigned n = 0;
  hb_glyph_info_t *info = hb_buffer_get_glyph_infos(c->buf, &n);
  hb_glyph_position_t *pos = hb_buffer_get_glyph_positions(c->buf, NULL);
  hb_position_t pen = 0;
  for (unsigned i = 0; i < n; i++) {
    struct glyph_bm tmp = {0};
    const struct glyph_bm *g = get_glyph(c, info[i].codepoint, &tmp);
    if (info[i].codepoint == 0 || !g)
      (*missing)++;
    if (g)
      blit(img, r, g, x0 + round26(pen + pos[i].x_offset), baseline - round26(pos[i].y_offset));
    free(tmp.bits);
    pen += pos[i].x_advance;
  }
}

/*
 * Leaves in c->buf the longest prefix of @line, cut at a cluster boundary,
 * trailing spaces dropped, followed by "…", whose width is at most @avail
 * (26.6). Return: 1 done, 0 not even "…" fits, -1 out of memory.
 */
static int shorten(tg_caption_t *c, const char *line, hb_position_t avail) {
  unsigned n = 0;
  hb_glyph_info_t *info = hb_buffer_get_glyph_infos(c->buf, &n);
  hb_glyph_position_t *pos = hb_buffer_get_glyph_positions(c->buf, NULL);
  unsigned *cluster = malloc(((size_t)n + 1) * sizeof(*cluster));
  hb_position_t *before = malloc(((size_t)n + 1) * sizeof(*before)); /* width of glyphs [0, i) */
  char *text = malloc(strlen(line) + sizeof(ELLIPSIS));
  int k, rc = -1;
  if (!cluster || !before || !text)
    goto out;
  before[0] = 0;
  for (unsigned i = 0; i < n; i++) {
    cluster[i] = info[i].cluster;
    before[i + 1] = before[i] + pos[i].x_advance;
  }
  /* the longest prefix that fits with the first shaping's advances ... */
  for (k = (int)n - 1; k > 0; k--)
    if (cluster[k] != cluster[k - 1] && before[k] + c->ell_adv <= avail)
      break;
  /* ... then shaped again with "…", shorter while it does not fit */
  for (;; k--) {
    size_t len;
    if (k > 0 && cluster[k] == cluster[k - 1])
      continue;
    len = k > 0 ? cluster[k] : 0;
    while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
      len--;
    memcpy(text, line, len);
    memcpy(text + len, ELLIPSIS, sizeof(ELLIPSIS));
    shape(c, text, (int)strlen(text));
    if (buf_width(c->buf) <= avail) {
      rc = 1;
      break;
    }
    if (k <= 0) {
      rc = 0;
      break;
    }
  }
out:
  free(cluster);
  free(before);
  free(text);
  return rc;
}

tg_err_t tg_caption_draw(tg_caption_t *c, struct tg_rgb_image *img, const char *const *lines,
                         size_t n_lines, int band_permille, int band_alpha,
                         struct tg_caption_report *rep, char *errstr, size_t n) {
  struct tg_caption_report r = {0};
  struct clip clip;
  int w, h, pitch, pad, margin, fit, top;
  tg_err_t err = TG_OK;

  if (rep)
    memset(rep, 0, sizeof(*rep));
  if (!c || !img || !img->rgb || img->width < 1 || img->height < 1 || (n_lines && !lines)) {
    snprintf(errstr, n, "caption: no font or no image");
    return TG_ERR_INVAL;
  }
  if (band_permille < 1 || band_permille > 1000 || band_alpha < 0 || band_alpha > 255) {
    snprintf(errstr, n, "caption: band %d permille, alpha %d out of range", band_permille,
             band_alpha);
    return TG_ERR_INVAL;
  }
  for (size_t i = 0; i < n_lines; i++)
    if (!lines[i] || strlen(lines[i]) > (size_t)INT32_MAX / 2) {
      snprintf(errstr, n, "caption: line %zu is missing or too long", i);
      return TG_ERR_INVAL;
    }
  w = img->width;
  h = img->height;

  /* the band */
  r.band_x = 0;
  r.band_w = w;
  r.band_h = (int)(((int64_t)h * band_permille + 500) / 1000);
  if (r.band_h < 1)
    r.band_h = 1;
  if (r.band_h > h)
    r.band_h = h;
  r.band_y = h - r.band_h;
  if (band_alpha > 0) {
    unsigned keep = 255u - (unsigned)band_alpha;
    unsigned char lut[256], *p = img->rgb + (size_t)r.band_y * (size_t)w * 3;
    size_t count = (size_t)r.band_h * (size_t)w * 3;
    for (unsigned v = 0; v < 256; v++)
      lut[v] = (unsigned char)((v * keep + 127u) / 255u);
    for (size_t i = 0; i < count; i++)
      p[i] = lut[p[i]];
  }

  /* the lines that fit, centred vertically, left aligned at the margin */
  pitch = (c->font_px * 5 + 3) / 4;
  pad = c->font_px / 4;
  margin = c->font_px / 2 > 2 ? c->font_px / 2 : 2;
  fit = r.band_h - 2 * pad >= 0 ? (r.band_h - 2 * pad) / pitch : 0;
  if (w - 2 * margin <= 0)
    fit = 0;
  if ((size_t)fit > n_lines)
    fit = (int)n_lines;
  r.lines_dropped = (int)n_lines - fit;
  clip = (struct clip){margin, r.band_y, w - margin, h};
  top = r.band_y + (r.band_h - fit * pitch) / 2 + (pitch - c->font_px) / 2;

  pthread_mutex_lock(&c->mu);
  for (int i = 0; i < fit; i++) {
    hb_position_t avail = (hb_position_t)(w - 2 * margin) * 64;
    int len = (int)strlen(lines[i]);
    shape(c, lines[i], len);
    if (buf_width(c->buf) > avail) {
      int s = shorten(c, lines[i], avail);
      if (s < 0) {
        snprintf(errstr, n, "caption: out of memory");
        err = TG_ERR_NOMEM;
        break;
      }
      if (s == 0) {
        r.lines_dropped++;
        continue;
      }
      r.lines_shortened++;
    }
    draw_buf(c, img, &clip, margin, top + i * pitch + c->ascent_px, &r.glyphs_missing);
    r.lines_drawn++;
  }
  pthread_mutex_unlock(&c->mu);
  if (rep)
    *rep = r;
  return err;
}
