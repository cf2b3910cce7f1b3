/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_redis_url.c - Redis URL parsing (proto/redis_url.c): the accepted
 * forms, the rejections and their reasons, and that the password shows up
 * in no error message and no redacted URL.
 */
#undef NDEBUG
#include <assert.h>

#include "check.h"
#include "redis_url.h"

#include <stdbool.h>

/* distinctive enough that finding it anywhere means it leaked */
#define SECRET "Sup3rS3cretPw"

/* parse @url, expect success */
static bool parse_ok(const char *url, struct tg_redis_url *u, int line) {
  char err[256] = "";
  bool ok = tg_redis_url_parse(url, u, err, sizeof(err));
  CHECK_MSG(ok, "line %d: \"%s\" rejected: %s", line, url, err);
  return ok;
}

/* parse @url, expect failure with a reason containing @needle and no secret */
static void parse_bad(const char *url, const char *needle, int line) {
  struct tg_redis_url u;
  char err[256] = "";
  bool ok = tg_redis_url_parse(url, &u, err, sizeof(err));
  CHECK_MSG(!ok, "line %d: \"%s\" accepted (host \"%s\" port %d db %d)", line,
            url ? url : "(null)", u.host, u.port, u.db);
  CHECK_MSG(ok || strstr(err, needle), "line %d: \"%s\": reason \"%s\" lacks \"%s\"", line,
            url ? url : "(null)", err, needle);
  CHECK_MSG(strstr(err, SECRET) == NULL, "line %d: error message leaks the password: %s", line,
            err);
}

#define PARSE_OK(url, u) parse_ok((url), (u), __LINE__)
#define PARSE_BAD(url, needle) parse_bad((url), (needle), __LINE__)

static void test_tcp(void) {
  struct tg_redis_url u;
  char buf[512];

  if (PARSE_OK("redis://localhost", &u)) {
    CHECK(!u.is_unix);
    CHECK_STREQ(u.host, "localhost");
    CHECK(u.port == 6379);
    CHECK(u.db == 0);
    CHECK_STREQ(u.user, "");
    CHECK_STREQ(u.password, "");
    CHECK_STREQ(tg_redis_url_redact(&u, buf, sizeof(buf)), "redis://localhost:6379");
  }
  if (PARSE_OK("redis://cache.internal:6390/5", &u)) {
    CHECK_STREQ(u.host, "cache.internal");
    CHECK(u.port == 6390);
    CHECK(u.db == 5);
    CHECK_STREQ(tg_redis_url_redact(&u, buf, sizeof(buf)), "redis://cache.internal:6390/5");
  }
  if (PARSE_OK("redis://10.0.0.7:6379/", &u)) {
    CHECK_STREQ(u.host, "10.0.0.7");
    CHECK(u.db == 0);
  }
  if (PARSE_OK("redis://:" SECRET "@redis.example:6380", &u)) {
    CHECK_STREQ(u.host, "redis.example");
    CHECK(u.port == 6380);
    CHECK_STREQ(u.user, "");
    CHECK_STREQ(u.password, SECRET);
  }
  if (PARSE_OK("redis://tripgen:" SECRET "@redis.example", &u)) {
    CHECK_STREQ(u.host, "redis.example");
    CHECK(u.port == 6379);
    CHECK_STREQ(u.user, "tripgen");
    CHECK_STREQ(u.password, SECRET);
  }
  /* percent-encoding: "@", ":", "/" and "%" inside the password */
  if (PARSE_OK("redis://app%2Dw:" SECRET "%40%3A%2F%25x@h:7000/2", &u)) {
    CHECK_STREQ(u.user, "app-w");
    CHECK_STREQ(u.password, SECRET "@:/%x");
    CHECK_STREQ(u.host, "h");
    CHECK(u.port == 7000);
    CHECK(u.db == 2);
  }
  /* a raw "@" in the password: the last "@" ends the credentials */
  if (PARSE_OK("redis://:" SECRET "@x@h", &u)) {
    CHECK_STREQ(u.password, SECRET "@x");
    CHECK_STREQ(u.host, "h");
  }
  if (PARSE_OK("redis://[::1]:6380", &u)) {
    CHECK(!u.is_unix);
    CHECK_STREQ(u.host, "::1");
    CHECK(u.port == 6380);
    /* the redacted form must still be a URL that parses back to the same place */
    struct tg_redis_url back;
    char err[256] = "";
    tg_redis_url_redact(&u, buf, sizeof(buf));
    CHECK_MSG(tg_redis_url_parse(buf, &back, err, sizeof(err)) && strcmp(back.host, "::1") == 0 &&
                  back.port == 6380,
              "a redacted IPv6 URL must parse back (host in [ ])");
  }
  if (PARSE_OK("redis://[2001:db8::5]/3", &u)) {
    CHECK_STREQ(u.host, "2001:db8::5");
    CHECK(u.port == 6379);
    CHECK(u.db == 3);
  }
  if (PARSE_OK("redis://h:1", &u))
    CHECK(u.port == 1);
  if (PARSE_OK("redis://h:65535", &u))
    CHECK(u.port == 65535);
}

static void test_unix(void) {
  struct tg_redis_url u;
  char buf[512];
  if (PARSE_OK("unix:///tmp/x.sock", &u)) {
    CHECK(u.is_unix);
    CHECK_STREQ(u.host, "/tmp/x.sock");
    CHECK(u.db == 0);
    CHECK_STREQ(u.password, "");
    CHECK_STREQ(tg_redis_url_redact(&u, buf, sizeof(buf)), "unix:///tmp/x.sock");
  }
  if (PARSE_OK("unix:///tmp/x.sock?db=3", &u)) {
    CHECK(u.is_unix);
    CHECK_STREQ(u.host, "/tmp/x.sock");
    CHECK(u.db == 3);
    tg_redis_url_redact(&u, buf, sizeof(buf));
    CHECK(strncmp(buf, "unix:///tmp/x.sock", 18) == 0);
    CHECK_MSG(strcmp(buf, "unix:///tmp/x.sock?db=3") == 0,
              "a redacted unix URL keeps its database number");
  }
}

static void test_rejections(void) {
  PARSE_BAD("", "empty");
  PARSE_BAD(NULL, "empty");
  PARSE_BAD("http://localhost:6379", "redis://");
  PARSE_BAD("rediss://localhost", "redis://");
  PARSE_BAD("localhost:6379", "redis://");
  PARSE_BAD("redis://", "host");
  PARSE_BAD("redis://:6379", "host");
  PARSE_BAD("redis://h:0", "port");
  PARSE_BAD("redis://h:70000", "port");
  PARSE_BAD("redis://h:65536", "port");
  PARSE_BAD("redis://h:", "port");
  PARSE_BAD("redis://h:-1", "port");
  PARSE_BAD("redis://h:63x9", "port");
  PARSE_BAD("redis://h:6379/abc", "database");
  PARSE_BAD("redis://h:6379/1x", "database");
  PARSE_BAD("redis://h:6379/-1", "database");
  PARSE_BAD("redis://[::1:6379", "ipv6");
  PARSE_BAD("unix://tmp/x.sock", "absolute");
  PARSE_BAD("unix://", "absolute");
  PARSE_BAD("unix:///tmp/x.sock?db=x", "db=N");
  PARSE_BAD("unix:///tmp/x.sock?timeout=3", "db=N");
  /* credentials: the password must never appear in the reason */
  PARSE_BAD("redis://" SECRET "@h", "credentials");
  PARSE_BAD("redis://u:" SECRET "%4@h", "credentials");
  PARSE_BAD("redis://u:" SECRET "%zz@h", "credentials");
  PARSE_BAD("redis://u:" SECRET "@h:0", "port");
  PARSE_BAD("redis://u:" SECRET "@h:99999", "port");
  PARSE_BAD("redis://u:" SECRET "@h/db", "database");
  PARSE_BAD("redis://u:" SECRET "@", "host");
  PARSE_BAD("redis://u:" SECRET "@:1", "host");
  PARSE_BAD("http://u:" SECRET "@h", "redis://");
  PARSE_BAD("redis://h:" SECRET, "port"); /* the password where the port goes */
  char longpw[600];
  memset(longpw, 'p', sizeof(longpw));
  memcpy(longpw + 100, SECRET, strlen(SECRET));
  longpw[sizeof(longpw) - 1] = '\0';
  char url[700];
  snprintf(url, sizeof(url), "redis://u:%s@h", longpw);
  PARSE_BAD(url, "credentials");
  char longhost[400];
  memset(longhost, 'h', sizeof(longhost));
  longhost[sizeof(longhost) - 1] = '\0';
  snprintf(url, sizeof(url), "redis://%s:6379", longhost);
  PARSE_BAD(url, "host");
}

/* what lies after the host must be a port, a db or nothing */
static void test_junk(void) {
  struct tg_redis_url u;
  char err[256] = "";
  CHECK_MSG(!tg_redis_url_parse("redis://[::1]junk:6380", &u, err, sizeof(err)),
            "text between ']' and the port must be refused");
  /* %XX is two hex digits; strtol alone also takes a sign or a space */
  static const char *const bad_pct[] = {"redis://u:%+1@h", "redis://u:% 1@h",
                                        "redis://u:%-1@h", "redis://u:%00@h"};
  for (size_t i = 0; i < sizeof(bad_pct) / sizeof(bad_pct[0]); i++) {
    bool ok = tg_redis_url_parse(bad_pct[i], &u, err, sizeof(err));
    CHECK_MSG(!ok, "%%XX must be two hex digits and not %%00: \"%s\" accepted", bad_pct[i]);
    if (ok)
      fprintf(stderr, "    \"%s\" accepted\n", bad_pct[i]);
  }
}

/* the password appears in no redacted form, whatever the URL */
static void test_redact(void) {
  static const char *const urls[] = {
    "redis://:" SECRET "@h",
    "redis://u:" SECRET "@h:6380",
    "redis://u:" SECRET "@h:6380/7",
    "redis://admin:" SECRET "@[::1]:6380/1",
    "redis://:%53up3rS3cretPw@h", /* percent-encoded S */
  };
  for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
    struct tg_redis_url u;
    char err[256] = "", buf[512] = "";
    bool ok = tg_redis_url_parse(urls[i], &u, err, sizeof(err));
    CHECK_MSG(ok, "\"%s\" rejected: %s", urls[i], err);
    if (!ok)
      continue;
    CHECK_STREQ(u.password, SECRET);
    tg_redis_url_redact(&u, buf, sizeof(buf));
    CHECK_MSG(strstr(buf, SECRET) == NULL, "redacted \"%s\" leaks the password", buf);
    CHECK_MSG(strstr(buf, "***") != NULL, "redacted \"%s\" does not show that a password is set",
              buf);
    CHECK(strncmp(buf, "redis://", 8) == 0);
    /* a short buffer truncates, still without the password */
    char small[12];
    tg_redis_url_redact(&u, small, sizeof(small));
    CHECK(strlen(small) < sizeof(small));
    CHECK(strstr(small, "Sup3r") == NULL);
  }
  struct tg_redis_url u;
  char err[256], buf[512];
  if (tg_redis_url_parse("redis://tripgen:" SECRET "@h:6380/2", &u, err, sizeof(err)))
    CHECK_STREQ(tg_redis_url_redact(&u, buf, sizeof(buf)), "redis://tripgen:***@h:6380/2");
}

/**
 * main() - run the Redis URL tests
 *
 * Return: 0 when every check passed, 1 otherwise.
 */
int main(void) {
  test_tcp();
  test_unix();
  test_rejections();
  test_junk();
  test_redact();
  assert(check_count > 0);
  return check_done("test_redis_url");
}
