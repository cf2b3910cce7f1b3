/* SPDX-License-Identifier: Apache-2.0 */
/*
 * postproc_bench.c - `scripts/bench postproc`: the whole post-process stage
 * against libvips doing the same work through its C API, in one process.
 *
 * Input: synthetic 768x960 scenes (sky, sun, hills, road, noise) encoded as
 * PNG here, as the diffusion stage would hand them over. Ours: the "cpu"
 * backend's run() (tg_postproc_find("cpu"), configured by
 * tg_worker_conf_defaults() with assets_dir = deploy/assets), i.e. decode ->
 * vehicle composite -> logo -> caption -> the variants full and thumb ->
 * JPEG + sha256, whatever the stage does today; its report says which of
 * vehicle/logo/caption it did and that is printed beside the numbers. The
 * anchor: libvips 8.x in-process (vips_image_new_from_buffer, the car
 * cutout of the same catalogue file scaled with vips_resize lanczos3 and
 * its alpha feathered with vips_gaussblur, the logo, a translucent band
 * and the same caption lines rendered by vips_text, all composited in one
 * vips_composite() call at the same places, vips_resize lanczos3 for the
 * thumb, vips_jpegsave_buffer at the same quality with 4:2:0 chroma, plus
 * the sha256 of each output), doing only the overlays the stage did.
 * Harmonisation and the contact shadow have no vips counterpart and are
 * not reproduced there: they are extra work on our side.
 *
 * Each side runs N images with 1 thread (vips_concurrency_set(1)), then
 * with all cores (one job per thread, as the worker's postproc.concurrency
 * runs them; vips still with 1 thread per image). Printed, name=value:
 * what the stage did, median ms/image and MP/s (input megapixels per
 * second) for each side and mode, and ratio_vs_vips = ours / vips median
 * single-thread time (target <= 1.0); ratio_vs_vips_all_cores the same
 * for the all-core wall time per image.
 *
 *   tripgen-bench-postproc [--images N] [--threads T] [--root DIR]
 */
#include "config.h"
#include "postproc/caption.h"
#include "postproc/catalogue.h"
#include "postproc/postproc.h"
#include "tg_job.h"

#include <math.h>
#include <openssl/evp.h>
#include <png.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <vips/vips.h>

#define SCENE_W 768
#define SCENE_H 960
#define N_SCENES 8   /* distinct inputs, cycled */
#define WARMUP 3

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, size_t n) {
  qsort(v, n, sizeof(*v), cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void die(const char *what, const char *why) {
  fprintf(stderr, "bench: %s: %s\n", what, why);
  exit(1);
}

/* ---- input scenes --------------------------------------------------------- */

struct membuf {
  unsigned char *data;
  size_t len, cap;
};

static void png_write_mem(png_structp png, png_bytep p, size_t n) {
  struct membuf *m = png_get_io_ptr(png);
  if (m->len + n > m->cap) {
    m->cap = (m->len + n) * 2;
    m->data = realloc(m->data, m->cap);
    if (!m->data)
      die("scene", "out of memory");
  }
  memcpy(m->data + m->len, p, n);
  m->len += n;
}

static void png_flush_mem(png_structp png) {
  (void)png;
}

/* A synthetic scene: sky gradient, a sun, two hill lines, a grey road, noise. */
static struct tg_blob make_scene(unsigned seed) {
  unsigned char *rgb = malloc((size_t)SCENE_W * SCENE_H * 3);
  if (!rgb)
    die("scene", "out of memory");
  uint32_t r = seed * 2654435761u + 1;
  double sun_x = SCENE_W * (0.2 + 0.08 * seed), sun_y = SCENE_H * 0.22;
  for (int y = 0; y < SCENE_H; y++) {
    double t = (double)y / SCENE_H;
    for (int x = 0; x < SCENE_W; x++) {
      double c[3];
      double h1 = SCENE_H * (0.50 + 0.04 * sin(x * 0.011 + seed));
      double h2 = SCENE_H * (0.58 + 0.03 * sin(x * 0.023 + 2.0 * seed));
      if (y < h1) {
        c[0] = 90 + 150 * t + 10 * seed;
        c[1] = 120 + 80 * t;
        c[2] = 230 - 90 * t;
        double dx = x - sun_x, dy = y - sun_y;
        if (dx * dx + dy * dy < 60.0 * 60.0)
          c[0] = 255, c[1] = 236, c[2] = 170;
      } else if (y < h2) {
        c[0] = 60 + 20 * t, c[1] = 110 - 30 * t, c[2] = 70;
      } else {
        double road = x > SCENE_W * 0.2 + (SCENE_H - y) * 0.3 &&
                      x < SCENE_W * 0.8 - (SCENE_H - y) * 0.3;
        c[0] = road ? 95 : 70 + 40 * t;
        c[1] = road ? 96 : 120 - 20 * t;
        c[2] = road ? 100 : 60;
      }
      for (int k = 0; k < 3; k++) {
        r = r * 1664525u + 1013904223u;
        double v = c[k] + (double)((r >> 24) % 13) - 6;
        rgb[((size_t)y * SCENE_W + (size_t)x) * 3 + (size_t)k] =
            (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
      }
    }
  }
  struct membuf m = {0};
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png_create_info_struct(png);
  if (!png || !info || setjmp(png_jmpbuf(png)))
    die("scene", "libpng failed");
  png_set_write_fn(png, &m, png_write_mem, png_flush_mem);
  png_set_IHDR(png, info, SCENE_W, SCENE_H, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < SCENE_H; y++)
    png_write_row(png, rgb + (size_t)y * SCENE_W * 3);
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  free(rgb);
  return (struct tg_blob){m.data, m.len};
}

static struct tg_blob scenes[N_SCENES];

/* ---- ours ------------------------------------------------------------------ */

static const struct tg_postproc_ops *ops;
static void *ops_state;
static tg_job_t *job;
static struct tg_postproc_report stage_rep;
static struct tg_variant_image stage_out[TG_MAX_VARIANTS];
static size_t stage_n;

static void ours_one(size_t i, bool keep) {
  struct tg_variant_image out[TG_MAX_VARIANTS];
  struct tg_postproc_report rep;
  struct tg_stage_error err = {0};
  size_t n = 0;
  if (!ops->run(ops_state, job, &scenes[i % N_SCENES], out, &n, &rep, &err))
    die("cpu run", err.message);
  if (keep) {
    stage_rep = rep;
    memcpy(stage_out, out, sizeof(out));
    stage_n = n;
  } else {
    tg_variant_images_free(out, n);
  }
}

/* ---- libvips ---------------------------------------------------------------- */

struct vips_plan {
  bool vehicle, logo, caption;
  VipsImage *car;          /* cropped to its opaque box, RGBA */
  VipsImage *logo_img;     /* RGBA */
  int car_w, car_x, car_y; /* scaled width and top-left in the scene */
  double car_scale;
  int feather_px;
  int logo_x, logo_y;
  int band_h, band_alpha;
  size_t n_lines;
  char *lines[TG_CAPTION_MAX_LINES];
  char font_desc[128];
  const char *font_file;
  int font_px;
  int quality;
  int thumb_w;
};

static struct vips_plan vp;
static size_t vips_full_bytes, vips_thumb_bytes;

static void vips_die(const char *what) {
  die(what, vips_error_buffer());
}

static void sha256_hex(const void *p, size_t len, char hex[65]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(p, len, md, &n, EVP_sha256(), NULL);
  for (unsigned k = 0; k < n && k < 32; k++)
    snprintf(hex + 2 * k, 3, "%02x", md[k]);
}

/* the box of alpha > 0 of an RGBA vips image */
static void opaque_box(VipsImage *rgba, int *x0, int *y0, int *x1, int *y1) {
  size_t size = 0;
  unsigned char *px = vips_image_write_to_memory(rgba, &size);
  if (!px)
    vips_die("car pixels");
  int w = rgba->Xsize, h = rgba->Ysize;
  *x0 = w, *y0 = h, *x1 = 0, *y1 = 0;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      if (px[((size_t)y * (size_t)w + (size_t)x) * 4 + 3]) {
        *x0 = x < *x0 ? x : *x0;
        *y0 = y < *y0 ? y : *y0;
        *x1 = x + 1 > *x1 ? x + 1 : *x1;
        *y1 = y + 1 > *y1 ? y + 1 : *y1;
      }
  g_free(px);
}

/* an asset as the catalogue decoded it (both sides start from the same pixels) */
static VipsImage *vips_of(const struct tg_rgba_image *img) {
  VipsImage *v = vips_image_new_from_memory_copy(img->rgba, (size_t)img->width * img->height * 4,
                                                 img->width, img->height, 4, VIPS_FORMAT_UCHAR);
  if (!v)
    vips_die("asset");
  v->Type = VIPS_INTERPRETATION_sRGB;
  return v;
}

/* Plan the vips side from the config and what the stage did. */
static void plan_vips(const struct tg_worker_conf *c) {
  memset(&vp, 0, sizeof(vp));
  vp.quality = c->jpeg_quality;
  vp.thumb_w = SCENE_W / 2;
  vp.vehicle = stage_rep.vehicle_asset[0] != '\0';
  vp.logo = stage_rep.logo;
  vp.caption = stage_rep.caption_lines > 0;
  char why[512];
  tg_catalogue_t *cat = NULL;
  if ((vp.vehicle || vp.logo) &&
      !(cat = tg_catalogue_load(c->assets_dir, c->max_image_bytes, why, sizeof(why))))
    die("catalogue", why);
  if (vp.vehicle) {
    const tg_trip_t *trip = job->trip;
    const struct tg_rgba_image *cut = tg_catalogue_vehicle(
        cat, trip->vehicle.model, trip->vehicle.color, trip->vehicle.generation, NULL);
    if (!cut)
      die("catalogue", "no cutout for the job's vehicle");
    VipsImage *full = vips_of(cut);
    int x0, y0, x1, y1;
    opaque_box(full, &x0, &y0, &x1, &y1);
    if (vips_crop(full, &vp.car, x0, y0, x1 - x0, y1 - y0, NULL))
      vips_die("car crop");
    g_object_unref(full);
    VipsImage *mem = vips_image_copy_memory(vp.car);
    g_object_unref(vp.car);
    vp.car = mem;
    vp.car_w = SCENE_W * c->car_width_permille / 1000;
    vp.car_scale = (double)vp.car_w / vp.car->Xsize;
    int car_h = (int)(vp.car->Ysize * vp.car_scale + 0.5);
    vp.car_x = SCENE_W * c->anchor_x_permille / 1000 - vp.car_w / 2;
    vp.car_y = SCENE_H * c->anchor_y_permille / 1000 - car_h;
    vp.feather_px = c->feather_px;
  }
  if (vp.logo) {
    vp.logo_img = vips_of(tg_catalogue_logo(cat));
    vp.logo_x = SCENE_W - vp.logo_img->Xsize - c->logo_margin_px;
    vp.logo_y = c->logo_margin_px;
  }
  tg_catalogue_destroy(cat);
  if (vp.caption) {
    struct tg_caption_text text = {0};
    if (tg_caption_lines(job->trip, &text, why, sizeof(why)) != TG_OK)
      die("caption lines", why);
    vp.n_lines = text.n_lines < (size_t)stage_rep.caption_lines ? text.n_lines
                                                                : (size_t)stage_rep.caption_lines;
    for (size_t i = 0; i < vp.n_lines; i++)
      vp.lines[i] = g_markup_escape_text(text.lines[i], -1);
    tg_caption_text_free(&text);
    vp.band_h = SCENE_H * c->caption_band_permille / 1000;
    vp.band_alpha = c->caption_band_alpha;
    vp.font_file = c->font_file;
    vp.font_px = c->caption_font_px;
    /* pango sizes are points; at 72 dpi a point is a pixel */
    snprintf(vp.font_desc, sizeof(vp.font_desc), "Noto Sans CJK JP %d", c->caption_font_px);
  }
}

/* TRIPGEN_BENCH_DUMP=DIR: the first image's outputs of both sides are written there */
static void dump(const char *name, const void *p, size_t len) {
  const char *dir = getenv("TRIPGEN_BENCH_DUMP");
  char path[1024];
  if (!dir)
    return;
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(p, 1, len, f) != len)
    die(path, "cannot write");
  fclose(f);
}

static void vips_save(VipsImage *img, size_t *bytes, const char *dump_as) {
  void *buf = NULL;
  size_t len = 0;
  if (vips_jpegsave_buffer(img, &buf, &len, "Q", vp.quality, "subsample_mode",
                           VIPS_FOREIGN_SUBSAMPLE_ON, "strip", TRUE, NULL))
    vips_die("jpegsave");
  char hex[65];
  sha256_hex(buf, len, hex);
  *bytes = len;
  if (dump_as)
    dump(dump_as, buf, len);
  g_free(buf);
}

static void vips_one(size_t i, bool keep) {
  const struct tg_blob *png = &scenes[i % N_SCENES];
  VipsObject *ctx = VIPS_OBJECT(vips_image_new());
  VipsImage **t = (VipsImage **)vips_object_local_array(ctx, 40);
  VipsImage *layers[4 + TG_CAPTION_MAX_LINES];
  int xs[4 + TG_CAPTION_MAX_LINES], ys[4 + TG_CAPTION_MAX_LINES];
  int modes[4 + TG_CAPTION_MAX_LINES];
  int n = 0, k = 0;

  if (!(t[k++] = vips_image_new_from_buffer(png->data, png->len, "", "access",
                                            VIPS_ACCESS_RANDOM, NULL)))
    vips_die("load");
  layers[n] = t[0], xs[n] = 0, ys[n] = 0, n++;
  if (vp.vehicle) {
    /* scale, then feather: alpha = min(alpha, gaussblur(alpha)) */
    if (vips_resize(vp.car, &t[k++], vp.car_scale, "kernel", VIPS_KERNEL_LANCZOS3, NULL))
      vips_die("car resize");
    VipsImage *car = t[k - 1];
    if (vp.feather_px > 0) {
      int a = k;
      if (vips_extract_band(car, &t[k++], 0, "n", 3, NULL) ||
          vips_extract_band(car, &t[k++], 3, NULL) ||
          vips_gaussblur(t[a + 1], &t[k++], vp.feather_px / 2.0, "precision",
                         VIPS_PRECISION_INTEGER, NULL) ||
          vips_relational(t[a + 1], t[a + 2], &t[k++], VIPS_OPERATION_RELATIONAL_LESS, NULL) ||
          vips_ifthenelse(t[a + 3], t[a + 1], t[a + 2], &t[k++], NULL) ||
          vips_cast_uchar(t[a + 4], &t[k++], NULL) ||
          vips_bandjoin2(t[a], t[a + 5], &t[k++], NULL))
        vips_die("feather");
      car = t[k - 1];
    }
    layers[n] = car, xs[n] = vp.car_x, ys[n] = vp.car_y, n++;
  }
  if (vp.logo)
    layers[n] = vp.logo_img, xs[n] = vp.logo_x, ys[n] = vp.logo_y, n++;
  if (vp.caption) {
    double ink[4] = {0, 0, 0, vp.band_alpha}, one[4] = {1, 1, 1, 1};
    int b = k;
    if (vips_black(&t[k++], SCENE_W, vp.band_h, "bands", 4, NULL) ||
        vips_linear(t[b], &t[k++], one, ink, 4, "uchar", TRUE, NULL) ||
        vips_copy(t[b + 1], &t[k++], "interpretation", VIPS_INTERPRETATION_sRGB, NULL))
      vips_die("band");
    layers[n] = t[k - 1], xs[n] = 0, ys[n] = SCENE_H - vp.band_h, n++;
    int margin = vp.font_px / 2, pitch = vp.font_px * 4 / 3;
    for (size_t l = 0; l < vp.n_lines; l++) {
      int m = k;
      double white[3] = {255, 255, 255}, zero[3] = {0, 0, 0};
      if (vips_text(&t[k++], vp.lines[l], "font", vp.font_desc, "fontfile", vp.font_file,
                    "dpi", 72, "width", SCENE_W - 2 * margin, NULL) ||
          vips_black(&t[k++], t[m]->Xsize, t[m]->Ysize, "bands", 3, NULL) ||
          vips_linear(t[m + 1], &t[k++], zero, white, 3, "uchar", TRUE, NULL) ||
          vips_bandjoin2(t[m + 2], t[m], &t[k++], NULL) ||
          vips_copy(t[m + 3], &t[k++], "interpretation", VIPS_INTERPRETATION_sRGB, NULL))
        vips_die("text");
      layers[n] = t[k - 1], xs[n] = margin;
      ys[n] = SCENE_H - vp.band_h + margin + (int)l * pitch, n++;
    }
  }
  VipsImage *composed = t[0];
  if (n > 1) {
    for (int j = 0; j < n - 1; j++)
      modes[j] = VIPS_BLEND_MODE_OVER;
    VipsArrayInt *ax = vips_array_int_new(xs + 1, n - 1), *ay = vips_array_int_new(ys + 1, n - 1);
    int bad = vips_composite(layers, &t[k++], n, modes, "x", ax, "y", ay, NULL);
    vips_area_unref(VIPS_AREA(ax));
    vips_area_unref(VIPS_AREA(ay));
    if (bad)
      vips_die("composite");
    int c = k;
    if (vips_extract_band(t[c - 1], &t[k++], 0, "n", 3, NULL) ||
        vips_cast_uchar(t[c], &t[k++], NULL))
      vips_die("flatten");
    composed = t[k - 1];
  }
  /* both variants read the composed scene: render it once */
  VipsImage *scene = vips_image_copy_memory(composed);
  if (!scene)
    vips_die("render");
  vips_save(scene, &vips_full_bytes, keep ? "vips-full.jpg" : NULL);
  VipsImage *thumb = NULL;
  if (vips_resize(scene, &thumb, (double)vp.thumb_w / SCENE_W, "kernel", VIPS_KERNEL_LANCZOS3,
                  NULL))
    vips_die("thumb");
  vips_save(thumb, &vips_thumb_bytes, keep ? "vips-thumb.jpg" : NULL);
  g_object_unref(thumb);
  g_object_unref(scene);
  g_object_unref(ctx);
}

/* ---- running ------------------------------------------------------------------ */

struct run {
  bool vips;
  size_t images;
  atomic_size_t next;
  double *ms; /* per image */
};

static void *worker(void *arg) {
  struct run *r = arg;
  size_t i;
  while ((i = atomic_fetch_add(&r->next, 1)) < r->images) {
    double t0 = now_ms();
    if (r->vips)
      vips_one(i, false);
    else
      ours_one(i, false);
    r->ms[i] = now_ms() - t0;
  }
  return NULL;
}

/* median ms/image and wall ms for @images on @threads */
static void measure(bool use_vips, size_t images, int threads, double *med, double *wall) {
  struct run r = {.vips = use_vips, .images = images};
  atomic_init(&r.next, 0);
  r.ms = calloc(images, sizeof(double));
  pthread_t *th = calloc((size_t)threads, sizeof(pthread_t));
  if (!r.ms || !th)
    die("bench", "out of memory");
  for (int w = 0; w < WARMUP; w++)
    use_vips ? vips_one((size_t)w, false) : ours_one((size_t)w, false);
  double t0 = now_ms();
  for (int k = 0; k < threads; k++)
    if (pthread_create(&th[k], NULL, worker, &r) != 0)
      die("bench", "pthread_create failed");
  for (int k = 0; k < threads; k++)
    pthread_join(th[k], NULL);
  *wall = now_ms() - t0;
  *med = median(r.ms, images);
  free(r.ms);
  free(th);
}

static tg_job_t *load_job(const char *root) {
  char path[1024];
  snprintf(path, sizeof(path), "%s/tests/data/jobs/good-full-options.json", root);
  FILE *f = fopen(path, "rb");
  if (!f)
    die(path, "cannot open");
  static char buf[65536];
  size_t n = fread(buf, 1, sizeof(buf), f);
  fclose(f);
  char why[256];
  tg_job_t *j = tg_job_parse(buf, n, why, sizeof(why));
  if (!j)
    die(path, why);
  j->options.n_variants = 2;
  snprintf(j->options.variants[0], sizeof(j->options.variants[0]), "full");
  snprintf(j->options.variants[1], sizeof(j->options.variants[1]), "thumb");
  return j;
}

int main(int argc, char **argv) {
  size_t images = 200;
  long threads = sysconf(_SC_NPROCESSORS_ONLN);
  const char *root = ".";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--images") == 0)
      images = (size_t)strtoul(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--threads") == 0)
      threads = strtol(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--root") == 0)
      root = argv[i + 1];
    else
      die(argv[i], "unknown option (--images N --threads T --root DIR)");
  }
  if (images < 1 || threads < 1)
    die("options", "--images and --threads must be positive");
  if (VIPS_INIT(argv[0]))
    vips_die("vips_init");
  vips_cache_set_max(0); /* every image is work done, not a cache hit */
  vips_concurrency_set(1);

  struct tg_worker_conf conf;
  tg_worker_conf_defaults(&conf);
  snprintf(conf.assets_dir, sizeof(conf.assets_dir), "%s/deploy/assets", root);
  char why[512];
  ops = tg_postproc_find("cpu");
  if (!ops)
    die("postproc", "no cpu backend");
  if (ops->create(&conf, &ops_state, why, sizeof(why)) != TG_OK)
    die("cpu create", why);
  job = load_job(root);
  for (unsigned s = 0; s < N_SCENES; s++)
    scenes[s] = make_scene(s);

  /* one run to learn what the stage does, then plan vips to do the same */
  ours_one(0, true);
  plan_vips(&conf);
  vips_one(0, true);
  for (size_t v = 0; v < stage_n; v++) {
    char name[64];
    snprintf(name, sizeof(name), "ours-%.16s.%.7s", stage_out[v].variant, stage_out[v].ext);
    dump(name, stage_out[v].data.data, stage_out[v].data.len);
  }

  printf("scene=%dx%d\nscene_png_bytes=%zu\nimages=%zu\nthreads_all=%ld\n", SCENE_W, SCENE_H,
         scenes[0].len, images, threads);
  printf("stage_vehicle=%s\nstage_vehicle_asset=%s\nstage_logo=%s\nstage_caption_lines=%d\n",
         stage_rep.vehicle_match[0] ? stage_rep.vehicle_match : "off",
         stage_rep.vehicle_asset[0] ? stage_rep.vehicle_asset : "-", stage_rep.logo ? "on" : "off",
         stage_rep.caption_lines);
  printf("stage_variants=");
  for (size_t v = 0; v < stage_n; v++)
    printf("%s%s:%dx%d:%s:%zu", v ? "," : "", stage_out[v].variant, stage_out[v].width,
           stage_out[v].height, stage_out[v].format, stage_out[v].data.len);
  printf("\nvips_ops=decode%s%s%s,resize_lanczos3(thumb),jpegsave_q%d_420 x2,sha256 x2\n",
         vp.vehicle ? ",car(resize_lanczos3+feather)" : "", vp.logo ? ",logo" : "",
         vp.caption ? ",caption(band+vips_text)" : "", vp.quality);
  printf("vips_variants=full:%zu,thumb:%zu\n", vips_full_bytes, vips_thumb_bytes);
  printf("not_in_vips=%s\n", vp.vehicle ? "colour harmonisation,contact shadow" : "-");
  tg_variant_images_free(stage_out, stage_n);
  fflush(stdout);

  double mp = (double)SCENE_W * SCENE_H / 1e6;
  double o1, o1w, v1, v1w, oa, oaw, va, vaw;
  measure(false, images, 1, &o1, &o1w);
  measure(true, images, 1, &v1, &v1w);
  measure(false, images, (int)threads, &oa, &oaw);
  measure(true, images, (int)threads, &va, &vaw);
  printf("ours_1t_median_ms=%.2f\nours_1t_mp_per_s=%.2f\n", o1, mp * images / (o1w / 1e3));
  printf("vips_1t_median_ms=%.2f\nvips_1t_mp_per_s=%.2f\n", v1, mp * images / (v1w / 1e3));
  printf("ours_all_median_ms=%.2f\nours_all_ms_per_image=%.2f\nours_all_mp_per_s=%.2f\n", oa,
         oaw / images, mp * images / (oaw / 1e3));
  printf("vips_all_median_ms=%.2f\nvips_all_ms_per_image=%.2f\nvips_all_mp_per_s=%.2f\n", va,
         vaw / images, mp * images / (vaw / 1e3));
  printf("ratio_vs_vips=%.3f\nratio_vs_vips_all_cores=%.3f\n", o1 / v1, oaw / vaw);

  ops->destroy(ops_state);
  tg_job_destroy(job);
  for (unsigned s = 0; s < N_SCENES; s++)
    tg_blob_free(&scenes[s]);
  for (size_t l = 0; l < vp.n_lines; l++)
    g_free(vp.lines[l]);
  if (vp.car)
    g_object_unref(vp.car);
  if (vp.logo_img)
    g_object_unref(vp.logo_img);
  vips_shutdown();
  return 0;
}
