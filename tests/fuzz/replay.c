/* SPDX-License-Identifier: Apache-2.0 */
/*
 * replay.c - a main() for the fuzz targets of tests/fuzz/ when built
 * without libFuzzer (gcc, the ordinary meson test): runs every file of the
 * corpus through LLVMFuzzerTestOneInput(), checks that files named ok-* are
 * accepted and bad-* refused, then runs a fixed number of mutations of the
 * corpus made by a seeded generator (bit flips, interesting integers, byte
 * insertion and deletion, truncation, splicing; PNG chunk CRCs repaired for
 * half of them so the mutation reaches past the CRC check). The same seed
 * gives the same inputs on every machine. When a target crashes (abort(),
 * a sanitizer report, a signal), the input is written to crash-<n>.bin in
 * the working directory before the process dies, for `fuzz-decode FILE`.
 *
 *
 * --malloc-limit-mb caps the memory one input may make the target ask for,
 * as libFuzzer's -malloc_limit_mb does: in a plain build the address space
 * is capped (RLIMIT_AS) at what is mapped at start plus the limit, so a
 * larger allocation fails and the target reports it; under ASan the same
 * is asked of ASan by the test's ASAN_OPTIONS (max_allocation_size_mb,
 * allocator_may_return_null), as RLIMIT_AS cannot work beside its shadow.
 *
 *   fuzz-decode [--mutations N] [--seed S] [--malloc-limit-mb M] PATH...
 */
#include "fuzz.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define REPLAY_MAX_INPUT (1u << 20) /* mutated inputs are capped at 1 MiB */
#define SLOW_MS 250                 /* an input taking longer is reported and saved */

struct input {
  char *name;
  unsigned char *data;
  size_t len;
};

static struct input *inputs;
static size_t n_inputs;

/* the input being run, for the crash handler */
static const unsigned char *cur_data;
static size_t cur_len;
static char cur_file[64] = "crash.bin";
static char cur_label[320] = "";

static void on_crash(int sig) {
  int fd = open(cur_file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    size_t off = 0;
    while (off < cur_len) {
      ssize_t w = write(fd, cur_data + off, cur_len - off);
      if (w <= 0)
        break;
      off += (size_t)w;
    }
    close(fd);
  }
  static const char msg[] = "replay: crashed on ";
  static const char saved[] = "; the input is saved as ";
  (void)!write(2, msg, sizeof(msg) - 1);
  (void)!write(2, cur_label, strlen(cur_label));
  (void)!write(2, saved, sizeof(saved) - 1);
  (void)!write(2, cur_file, strlen(cur_file));
  (void)!write(2, "\n", 1);
  signal(sig, SIG_DFL);
  raise(sig);
}

static void run_one(const unsigned char *data, size_t len, const char *crash_name,
                    const char *label) {
  cur_data = data;
  cur_len = len;
  snprintf(cur_file, sizeof(cur_file), "%s", crash_name);
  snprintf(cur_label, sizeof(cur_label), "%s", label);
  (void)LLVMFuzzerTestOneInput(data, len);
}

static bool read_file(const char *path, const char *name) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    return false;
  }
  struct input in = {.name = strdup(name)};
  unsigned char buf[65536];
  size_t got;
  while ((got = fread(buf, 1, sizeof(buf), f)) > 0) {
    unsigned char *p = realloc(in.data, in.len + got);
    if (!p)
      abort();
    memcpy(p + in.len, buf, got);
    in.data = p;
    in.len += got;
  }
  fclose(f);
  struct input *grown = realloc(inputs, sizeof(*inputs) * (n_inputs + 1));
  if (!grown || !in.name)
    abort();
  inputs = grown;
  inputs[n_inputs++] = in;
  return true;
}

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

/* cap the address space at what is mapped now + @mb MiB (plain builds) */
static void cap_memory(long mb) {
  if (UNDER_ASAN) {
    fprintf(stderr, "replay: under ASan: the allocation limit is ASAN_OPTIONS' business\n");
    return;
  }
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  unsigned long long kb = 0;
  while (f && fgets(line, sizeof(line), f))
    if (sscanf(line, "VmSize: %llu kB", &kb) == 1)
      break;
  if (f)
    fclose(f);
  struct rlimit rl;
  rl.rlim_cur = rl.rlim_max = (rlim_t)(kb * 1024 + (unsigned long long)mb * 1024 * 1024);
  if (kb == 0 || setrlimit(RLIMIT_AS, &rl) != 0)
    fprintf(stderr, "replay: cannot cap memory; going on without\n");
}

static int by_name(const void *a, const void *b) {
  return strcmp(((const struct input *)a)->name, ((const struct input *)b)->name);
}

static bool add_path(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) {
    perror(path);
    return false;
  }
  if (!S_ISDIR(st.st_mode)) {
    const char *base = strrchr(path, '/');
    return read_file(path, base ? base + 1 : path);
  }
  DIR *d = opendir(path);
  if (!d) {
    perror(path);
    return false;
  }
  bool ok = true;
  struct dirent *e;
  while (ok && (e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    char full[4096];
    snprintf(full, sizeof(full), "%s/%s", path, e->d_name);
    if (stat(full, &st) == 0 && S_ISREG(st.st_mode))
      ok = read_file(full, e->d_name);
  }
  closedir(d);
  return ok;
}

/* ---- deterministic mutations ------------------------------------------- */

static uint64_t rng_state;

static uint64_t rnd(void) { /* xorshift64* */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545F4914F6CDD1DULL;
}

static size_t below(size_t n) {
  return n ? (size_t)(rnd() % n) : 0;
}

static uint32_t crc32_of(const unsigned char *p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++)
      c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
  }
  return c ^ 0xffffffffu;
}

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* recompute the CRC of every complete chunk of a PNG */
static void fix_png_crcs(unsigned char *p, size_t len) {
  static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (len < 8 || memcmp(p, sig, 8) != 0)
    return;
  size_t at = 8;
  while (at + 12 <= len) {
    uint32_t n = be32(p + at);
    if (n > len - at - 12)
      break;
    uint32_t c = crc32_of(p + at + 4, 4 + (size_t)n);
    unsigned char *q = p + at + 8 + n;
    q[0] = (unsigned char)(c >> 24), q[1] = (unsigned char)(c >> 16);
    q[2] = (unsigned char)(c >> 8), q[3] = (unsigned char)c;
    at += 12 + (size_t)n;
  }
}

static const uint32_t interesting[] = {0,     1,      7,      8,      15,         16,
                                       63,    64,     255,    256,    4095,       4096,
                                       4097,  40000,  65500,  65535,  0x7fffffff, 0x80000000,
                                       0xffffffff};

/* one mutation of buf[0..*len) in place; cap is the buffer's size */
static void mutate_once(unsigned char *buf, size_t *len, size_t cap) {
  size_t n = *len;
  switch (below(8)) {
  case 0: /* flip a bit */
    if (n)
      buf[below(n)] ^= (unsigned char)(1u << below(8));
    break;
  case 1: /* set a byte to an edge value */
    if (n) {
      static const unsigned char v[] = {0, 1, 0x7f, 0x80, 0xfe, 0xff, 0xd8, 0xda};
      buf[below(n)] = v[below(sizeof(v))];
    }
    break;
  case 2: /* a big-endian 16- or 32-bit interesting integer (PNG and JPEG are big-endian) */
    if (n >= 4) {
      uint32_t v = interesting[below(sizeof(interesting) / sizeof(interesting[0]))];
      size_t at = below(n - 3);
      if (below(2)) {
        buf[at] = (unsigned char)(v >> 8), buf[at + 1] = (unsigned char)v;
      } else {
        buf[at] = (unsigned char)(v >> 24), buf[at + 1] = (unsigned char)(v >> 16);
        buf[at + 2] = (unsigned char)(v >> 8), buf[at + 3] = (unsigned char)v;
      }
    }
    break;
  case 3: /* truncate */
    if (n)
      *len = below(n);
    break;
  case 4: { /* delete a range */
    if (n < 2)
      break;
    size_t at = below(n), k = 1 + below(n - at < 64 ? n - at : 64);
    memmove(buf + at, buf + at + k, n - at - k);
    *len = n - k;
    break;
  }
  case 5: { /* insert random bytes */
    size_t k = 1 + below(32), at = below(n + 1);
    if (n + k > cap || at > n)
      break;
    memmove(buf + at + k, buf + at, n - at);
    for (size_t i = 0; i < k; i++)
      buf[at + i] = (unsigned char)rnd();
    *len = n + k;
    break;
  }
  case 6: { /* duplicate a range */
    if (!n)
      break;
    unsigned char copy[256];
    size_t from = below(n), k = 1 + below(n - from < sizeof(copy) ? n - from : sizeof(copy));
    size_t at = below(n + 1);
    if (n + k > cap || at > n)
      break;
    memcpy(copy, buf + from, k);
    memmove(buf + at + k, buf + at, n - at);
    memcpy(buf + at, copy, k);
    *len = n + k;
    break;
  }
  default: { /* splice the tail of another input */
    const struct input *o = &inputs[below(n_inputs)];
    if (!o->len)
      break;
    size_t at = below(n + 1), from = below(o->len), k = o->len - from;
    if (at + k > cap)
      k = cap - at;
    memcpy(buf + at, o->data + from, k);
    *len = at + k;
    break;
  }
  }
}

int main(int argc, char **argv) {
  long mutations = 0, limit_mb = 0;
  unsigned long long seed = 1;
  int i = 1;
  for (; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
    if (i + 1 >= argc)
      goto usage;
    if (strcmp(argv[i], "--mutations") == 0)
      mutations = strtol(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--malloc-limit-mb") == 0)
      limit_mb = strtol(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--seed") == 0)
      seed = strtoull(argv[i + 1], NULL, 10);
    else
      goto usage;
  }
  if (i >= argc || mutations < 0)
    goto usage;
  for (; i < argc; i++)
    if (!add_path(argv[i]))
      return 1;
  if (n_inputs == 0) {
    fprintf(stderr, "replay: no inputs\n");
    return 1;
  }
  qsort(inputs, n_inputs, sizeof(*inputs), by_name);
  unsigned char *buf = malloc(REPLAY_MAX_INPUT);
  if (!buf)
    abort();
  if (limit_mb > 0)
    cap_memory(limit_mb);
  int sigs[] = {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL};
  for (size_t k = 0; k < sizeof(sigs) / sizeof(sigs[0]); k++)
    signal(sigs[k], on_crash);

  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int failures = 0;
  size_t accepted = 0;
  for (size_t k = 0; k < n_inputs; k++) {
    const struct input *in = &inputs[k];
    char why[256];
    run_one(in->data, in->len, "crash-corpus.bin", in->name);
    int ok = tg_fuzz_verdict(why, sizeof(why));
    accepted += (size_t)ok;
    if (strncmp(in->name, "ok-", 3) == 0 && !ok) {
      fprintf(stderr, "replay: %s: refused, want accepted: %s\n", in->name, why);
      failures++;
    } else if (strncmp(in->name, "bad-", 4) == 0 && ok) {
      fprintf(stderr, "replay: %s: accepted, want refused\n", in->name);
      failures++;
    } else if (getenv("TG_FUZZ_VERBOSE")) {
      fprintf(stderr, "replay: %s: %s%s\n", in->name, ok ? "accepted" : "refused: ", why);
    }
  }

  rng_state = seed * 0x9E3779B97F4A7C15ULL + 1;
  size_t m_accepted = 0;
  for (long m = 0; m < mutations; m++) {
    const struct input *in = &inputs[below(n_inputs)];
    size_t len = in->len < REPLAY_MAX_INPUT ? in->len : REPLAY_MAX_INPUT;
    if (len)
      memcpy(buf, in->data, len);
    for (size_t k = 1 + below(4); k > 0; k--)
      mutate_once(buf, &len, REPLAY_MAX_INPUT);
    if (below(2))
      fix_png_crcs(buf, len);
    /* an exact-size copy, so ASan sees reads past the end */
    unsigned char *exact = malloc(len ? len : 1);
    if (!exact)
      abort();
    memcpy(exact, buf, len);
    char name[64];
    snprintf(name, sizeof(name), "crash-%ld.bin", m);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    char label[320];
    snprintf(label, sizeof(label), "mutation %ld of %s", m, in->name);
    run_one(exact, len, name, label);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double took = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
    if (took > SLOW_MS) {
      snprintf(name, sizeof(name), "slow-%ld.bin", m);
      FILE *f = fopen(name, "wb");
      if (f) {
        fwrite(exact, 1, len, f);
        fclose(f);
      }
      fprintf(stderr, "replay: slow: mutation %ld of %s: %.0f ms (input saved as %s)\n", m,
              in->name, took, name);
    }
    char why[256];
    m_accepted += (size_t)tg_fuzz_verdict(why, sizeof(why));
    free(exact);
  }
  free(buf);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
  printf("replay: %zu corpus files (%zu decoded, %zu refused), %ld mutations with seed %llu "
         "(%zu decoded, %ld refused), %d unexpected verdicts, %.0f ms\n",
         n_inputs, accepted, n_inputs - accepted, mutations, seed, m_accepted,
         mutations - (long)m_accepted, failures, ms);
  for (size_t k = 0; k < n_inputs; k++) {
    free(inputs[k].name);
    free(inputs[k].data);
  }
  free(inputs);
  return failures ? 1 : 0;

usage:
  fprintf(stderr, "usage: %s [--mutations N] [--seed S] [--malloc-limit-mb M] PATH...\n",
          argv[0]);
  return 2;
}
