/* SPDX-License-Identifier: Apache-2.0 */
/*
 * caption.h - the caption band of the post-process stage: the trip's facts
 * as lines of UTF-8 text (caption_text.c) and a translucent dark band across
 * the bottom of the scene with those lines drawn on it in white
 * (caption.c): shaped by HarfBuzz, rasterised antialiased by FreeType from
 * one face (Noto Sans CJK by default, which covers CJK and Latin), left
 * aligned with a margin. A line wider than the band is shortened at a
 * cluster boundary and ends in "…"; lines that do not fit the band's height
 * are left out, last first. Nothing is ever drawn outside the band.
 */
#ifndef TG_POSTPROC_CAPTION_H
#define TG_POSTPROC_CAPTION_H

#include "image.h"
#include "tg_err.h"
#include "tg_trip.h"

#include <stddef.h>

/* the most lines tg_caption_lines() makes: facts, route, team */
#define TG_CAPTION_MAX_LINES 3

/* The trip's facts as caption lines, most important first. */
struct tg_caption_text {
  size_t n_lines;
  char *lines[TG_CAPTION_MAX_LINES]; /* malloc()ed UTF-8, NUL-terminated */
};

/**
 * tg_caption_lines() - the trip's facts as caption lines
 * @trip:   a validated trip
 * @out:    the lines on success (free with tg_caption_text_free()); zeroed on failure
 * @errstr: reason on failure
 * @n:      its size
 *
 * A pure function of the trip; the lines, in order:
 *  1. "<start date>[ → <end date>] · <distance> km · <driving time>": the
 *     dates are the calendar dates of start_time and end_time in their own
 *     UTC offsets (the trip's local dates), the end date only when it
 *     differs; the distance with one decimal ("645.4 km"); the driving time
 *     rounded to the nearest minute, "14 h 28 min", "2 h 0 min", or "45 min"
 *     under an hour.
 *  2. The cities on the route joined by " → ": origin, the via cities,
 *     destination, as written in the trip (CJK or Latin); a city equal to
 *     the one before it is not repeated ("哈尔滨市 → 哈尔滨市" is "哈尔滨市").
 *  3. The team, when set and not empty.
 *
 * Return: TG_OK, TG_ERR_NOMEM, or TG_ERR_INVAL for a NULL trip or a start
 * or end time that does not begin with a YYYY-MM-DD date.
 */
tg_err_t tg_caption_lines(const tg_trip_t *trip, struct tg_caption_text *out, char *errstr,
                          size_t n);

/**
 * tg_caption_text_free() - free caption lines and zero them (NULL-safe)
 * @text: the lines
 */
void tg_caption_text_free(struct tg_caption_text *text);

/* A loaded caption font at one pixel size; opaque. */
typedef struct tg_caption_s tg_caption_t;

/* What tg_caption_draw() did. */
struct tg_caption_report {
  int lines_drawn;     /* including shortened ones */
  int lines_shortened; /* drawn with a trailing "…" */
  int lines_dropped;   /* not drawn: no room in the band's height (or width for even "…") */
  int glyphs_missing;  /* not in the font (drawn as its .notdef box) or not renderable */
  int band_x, band_y, band_w, band_h; /* the band, in image pixels */
};

/**
 * tg_caption_create() - load the caption font
 * @font_file: a TrueType/OpenType font or collection (.ttc: face 0 is used;
 *             for NotoSansCJK-Regular.ttc that is Noto Sans CJK JP, which
 *             covers CJK and Latin)
 * @font_px:   text size in pixels (the em height), 1..1000
 * @errstr:    on failure, the reason naming the file and the config key
 *             postproc.font_file
 * @n:         its size
 *
 * The handle may be shared by any number of threads: tg_caption_draw()
 * serialises its use of the FreeType face and HarfBuzz font with a mutex
 * held for one draw (a few dozen glyphs, rendered glyphs are cached), which
 * is far cheaper than opening a 19 MB face per call.
 *
 * Return: a new handle, or NULL with the reason in @errstr.
 */
tg_caption_t *tg_caption_create(const char *font_file, int font_px, char *errstr, size_t n);

/**
 * tg_caption_destroy() - free a caption font (NULL-safe)
 * @c: the handle
 */
void tg_caption_destroy(tg_caption_t *c);

/**
 * tg_caption_draw() - draw the caption band onto an image in place
 * @c:             the font
 * @img:           the image (RGB8), changed only inside the band
 * @lines:         UTF-8 lines, top to bottom (invalid bytes show as U+FFFD)
 * @n_lines:       how many
 * @band_permille: band height in thousandths of the image height, 1..1000
 *                 (at least one pixel row)
 * @band_alpha:    band opacity 0..255 (black over the scene)
 * @rep:           what was drawn (may be NULL)
 * @errstr:        reason on failure
 * @n:             its size
 *
 * The band spans the full width at the bottom of the image. Lines are
 * set in white at a pitch of ceil(1.25 * font_px), left aligned at a margin
 * of font_px / 2 (at least 2 px) on both sides, the block centred
 * vertically in the band with at least font_px / 4 above and below. Lines
 * wider than the text area are cut at a cluster boundary and end in "…";
 * lines beyond the band's height are dropped from the end. Every glyph is
 * clipped to the text area, so no pixel outside the band (or inside the
 * margins) changes. Text is shaped with the language zh-Hans, so Han
 * characters take their Simplified Chinese forms. The same inputs give the
 * same pixels.
 *
 * Return: TG_OK, TG_ERR_NOMEM, or TG_ERR_INVAL for bad arguments.
 */
tg_err_t tg_caption_draw(tg_caption_t *c, struct tg_rgb_image *img, const char *const *lines,
                         size_t n_lines, int band_permille, int band_alpha,
                         struct tg_caption_report *rep, char *errstr, size_t n);

#endif
