/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_time.c - RFC 3339 parsing (offsets, fractions, calendar checks),
 * UTC formatting and the UTC date of an instant (proto/time.c).
 */
#undef NDEBUG
#include <assert.h>

#include "check.h"
#include "tg_time.h"

#include <inttypes.h>
#include <stdint.h>

/* parse @s, expect success and @want ms */
static void accepts(const char *s, int64_t want, int line) {
  int64_t ms = -12345;
  const char *why = "unset";
  bool ok = tg_time_parse(s, &ms, &why);
  CHECK_MSG(ok, "line %d: \"%s\" rejected: %s", line, s, why ? why : "(null)");
  CHECK_MSG(!ok || ms == want, "line %d: \"%s\" gave %" PRId64 " ms, want %" PRId64, line, s,
            ms, want);
}

/* parse @s, expect failure with a reason */
static void rejects(const char *s, int line) {
  int64_t ms = 0;
  const char *why = NULL;
  bool ok = tg_time_parse(s, &ms, &why);
  CHECK_MSG(!ok, "line %d: \"%s\" accepted as %" PRId64 " ms", line, s, ms);
  CHECK_MSG(ok || (why && *why), "line %d: \"%s\" rejected without a reason", line, s);
}

/* parse @s, expect failure whose reason contains @needle */
static void rejects_because(const char *s, const char *needle, int line) {
  int64_t ms = 0;
  const char *why = NULL;
  bool ok = tg_time_parse(s, &ms, &why);
  CHECK_MSG(!ok, "line %d: \"%s\" accepted", line, s);
  CHECK_MSG(ok || (why && strstr(why, needle)), "line %d: \"%s\": reason \"%s\" lacks \"%s\"",
            line, s, why ? why : "(null)", needle);
}

#define ACCEPTS(s, want) accepts((s), (want), __LINE__)
#define REJECTS(s) rejects((s), __LINE__)
#define REJECTS_BECAUSE(s, needle) rejects_because((s), (needle), __LINE__)

static void test_parse_ok(void) {
  ACCEPTS("1970-01-01T00:00:00Z", 0);
  ACCEPTS("1970-01-01T00:00:01Z", 1000);
  ACCEPTS("2000-01-01T00:00:00Z", INT64_C(946684800000));
  ACCEPTS("2038-01-19T03:14:08Z", INT64_C(2147483648000)); /* past 32-bit time_t */
  ACCEPTS("2100-03-01T00:00:00Z", INT64_C(4107542400000)); /* 2100 is not a leap year */
  /* the may-day sample trip */
  ACCEPTS("2024-05-02T22:38:00+08:00", INT64_C(1714660680000));
  ACCEPTS("2024-05-02T14:38:00Z", INT64_C(1714660680000));
  ACCEPTS("2024-05-02T14:38:00+00:00", INT64_C(1714660680000));
  ACCEPTS("2024-05-02T14:38:00-00:00", INT64_C(1714660680000));
  ACCEPTS("2024-05-05T18:57:00+08:00", INT64_C(1714906620000));
  /* lowercase separators are RFC 3339 */
  ACCEPTS("2024-05-02t14:38:00z", INT64_C(1714660680000));
  /* leap day, and offsets that cross midnight (into the leap day, into a new year) */
  ACCEPTS("2024-02-29T12:00:00Z", INT64_C(1709208000000));
  ACCEPTS("2024-02-29T23:59:59.999Z", INT64_C(1709251199999));
  ACCEPTS("2024-03-01T01:30:00+08:00", INT64_C(1709227800000)); /* 2024-02-29T17:30Z */
  ACCEPTS("2023-12-31T20:00:00-05:00", INT64_C(1704070800000)); /* 2024-01-01T01:00Z */
  ACCEPTS("2024-03-10T23:30:00-09:30", INT64_C(1710147600000)); /* half-hour offset */
  /* fractions: to the millisecond, extra digits truncated */
  ACCEPTS("2024-05-02T14:38:00.5Z", INT64_C(1714660680500));
  ACCEPTS("2024-05-02T14:38:00.05Z", INT64_C(1714660680050));
  ACCEPTS("2024-05-02T14:38:00.123Z", INT64_C(1714660680123));
  ACCEPTS("2024-05-02T14:38:00.123456789Z", INT64_C(1714660680123));
  ACCEPTS("2024-05-02T22:38:00.999+08:00", INT64_C(1714660680999));
  ACCEPTS("2024-05-02T23:59:59+23:59", INT64_C(1714608059000)); /* largest offset */
}

static void test_parse_bad(void) {
  REJECTS_BECAUSE("2024-05-02T22:38:00", "offset");      /* no offset */
  REJECTS_BECAUSE("2024-05-02T22:38:00.5", "offset");
  REJECTS_BECAUSE("2024-02-30T00:00:00Z", "calendar");   /* Feb 30 */
  REJECTS_BECAUSE("2023-02-29T00:00:00Z", "calendar");   /* not a leap year */
  REJECTS_BECAUSE("2100-02-29T00:00:00Z", "calendar");   /* century, not a leap year */
  REJECTS_BECAUSE("2024-04-31T00:00:00Z", "calendar");
  REJECTS_BECAUSE("2024-13-01T00:00:00Z", "calendar");
  REJECTS_BECAUSE("2024-00-01T00:00:00Z", "calendar");
  REJECTS_BECAUSE("2024-01-00T00:00:00Z", "calendar");
  REJECTS_BECAUSE("2024-05-02T24:00:00Z", "time of day"); /* hour 24 */
  REJECTS_BECAUSE("2024-05-02T23:60:00Z", "time of day"); /* minute 60 */
  REJECTS("2024-05-02T23:59:61Z");
  REJECTS_BECAUSE("1969-12-31T23:59:59Z", "1970");      /* before the epoch */
  REJECTS("0000-01-01T00:00:00Z");
  /* separators */
  REJECTS("2024/05/02T22:38:00Z");
  REJECTS("2024-05-02X22:38:00Z");
  REJECTS("2024-05-02T22-38-00Z");
  REJECTS("2024-05-02T22:38.00Z");
  REJECTS("2024-05-02T22:38:00+08-00");
  REJECTS("2024-05-02T22:38:00+0800");
  REJECTS("2024-05-02T22:38:00+8:00");
  REJECTS("2024-05-02T22:38:00+08");
  REJECTS("2024-05-02T22:38:00+");
  REJECTS("2024-05-02T22:38:00+24:00");
  REJECTS("2024-05-02T22:38:00+08:60");
  REJECTS("2024-05-02T22:38:00.Z");                     /* empty fraction */
  REJECTS("2024-5-02T22:38:00Z");
  REJECTS("24-05-02T22:38:00Z");
  REJECTS(" 2024-05-02T22:38:00Z");
  /* trailing junk */
  REJECTS("2024-05-02T22:38:00Z ");
  REJECTS("2024-05-02T22:38:00Zjunk");
  REJECTS("2024-05-02T22:38:00+08:00x");
  REJECTS("2024-05-02T22:38:00+08:00Z");
  /* short and empty */
  REJECTS("");
  REJECTS("2024-05-02");
  REJECTS("2024-05-02T22:38Z");
  REJECTS(NULL);
}

static void test_format(void) {
  char buf[32];
  CHECK_STREQ(tg_time_format_utc(0, buf, sizeof(buf)), "1970-01-01T00:00:00.000Z");
  CHECK_STREQ(tg_time_format_utc(INT64_C(1714660680000), buf, sizeof(buf)),
              "2024-05-02T14:38:00.000Z");
  CHECK_STREQ(tg_time_format_utc(INT64_C(1709251199999), buf, sizeof(buf)),
              "2024-02-29T23:59:59.999Z");
  CHECK_STREQ(tg_time_format_utc(INT64_C(1714660680050), buf, sizeof(buf)),
              "2024-05-02T14:38:00.050Z");
  CHECK_STREQ(tg_time_format_utc(-1, buf, sizeof(buf)), "1969-12-31T23:59:59.999Z");
  CHECK(tg_time_format_utc(1, buf, sizeof(buf)) == buf);

  /* format -> parse gives back the same instant */
  const int64_t samples[] = {0,
                             1,
                             999,
                             INT64_C(946684800000),
                             INT64_C(1709208000000),
                             INT64_C(1709251199999),
                             INT64_C(1709251200000),
                             INT64_C(1714660680123),
                             INT64_C(1735689599999),
                             INT64_C(2147483648000),
                             INT64_C(4107542400000),
                             INT64_C(253402300799999)}; /* 9999-12-31T23:59:59.999Z */
  for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
    int64_t back = -1;
    const char *why = NULL;
    tg_time_format_utc(samples[i], buf, sizeof(buf));
    CHECK_MSG(tg_time_parse(buf, &back, &why) && back == samples[i],
              "round trip of %" PRId64 " via \"%s\" gave %" PRId64 " (%s)", samples[i], buf, back,
              why ? why : "ok");
  }
  /* every day of leap year 2024, at a time of day that drifts by 7 ms a day */
  for (int64_t ms = INT64_C(1704067200000); ms < INT64_C(1735689600000); ms += 86400000 + 7) {
    int64_t back = -1;
    const char *why;
    tg_time_format_utc(ms, buf, sizeof(buf));
    if (!tg_time_parse(buf, &back, &why) || back != ms) {
      CHECK_MSG(0, "round trip of %" PRId64 " via \"%s\" gave %" PRId64, ms, buf, back);
      break;
    }
  }
}

static void test_utc_date(void) {
  int y = 0, m = 0, d = 0;
  tg_time_utc_date(0, &y, &m, &d);
  CHECK(y == 1970 && m == 1 && d == 1);
  tg_time_utc_date(INT64_C(1709251199999), &y, &m, &d); /* last ms of the leap day */
  CHECK(y == 2024 && m == 2 && d == 29);
  tg_time_utc_date(INT64_C(1709251200000), &y, &m, &d);
  CHECK(y == 2024 && m == 3 && d == 1);
  /* 22:38 in Shanghai on 2 May is still 2 May in UTC; 07:05 on 1 Oct is 30 Sep */
  tg_time_utc_date(INT64_C(1714660680000), &y, &m, &d);
  CHECK(y == 2024 && m == 5 && d == 2);
  tg_time_utc_date(INT64_C(1727737500000), &y, &m, &d);
  CHECK(y == 2024 && m == 9 && d == 30);
  tg_time_utc_date(INT64_C(1735689599999), &y, &m, &d);
  CHECK(y == 2024 && m == 12 && d == 31);
  tg_time_utc_date(-1, &y, &m, &d);
  CHECK(y == 1969 && m == 12 && d == 31);
}

static void test_clocks(void) {
  int64_t now = tg_now_ms();
  CHECK(now > INT64_C(1704067200000)); /* after 2024-01-01 */
  int64_t a = tg_mono_ms();
  tg_sleep_ms(20);
  int64_t b = tg_mono_ms();
  CHECK(b - a >= 19);
  tg_sleep_ms(0);
  tg_sleep_ms(-5);
}

/**
 * main() - run the time tests
 *
 * Return: 0 when every check passed, 1 otherwise.
 */
int main(void) {
  test_parse_ok();
  test_parse_bad();
  test_format();
  test_utc_date();
  test_clocks();
  assert(check_count > 0);
  return check_done("test_time");
}
