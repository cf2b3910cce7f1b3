/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_kafka_offsets.c - the per-partition commit watermark: jobs finish
 * out of order, the watermark only passes finished prefixes.
 */
#include "check.h"
#include "kafka_offsets.h"

static void test_prefix(void) {
  struct tg_offsets o = {0};
  tg_offsets_reset(&o);
  CHECK(tg_offsets_watermark(&o) == -1);
  for (int64_t off = 10; off < 15; off++)
    CHECK(tg_offsets_add(&o, off));
  CHECK(tg_offsets_watermark(&o) == 10 && tg_offsets_open_count(&o) == 5);
  CHECK(tg_offsets_done(&o, 12) && tg_offsets_done(&o, 13));
  CHECK(tg_offsets_watermark(&o) == 10); /* 10 and 11 still run */
  CHECK(!tg_offsets_done(&o, 12));       /* twice: refused */
  CHECK(!tg_offsets_done(&o, 99));       /* unknown */
  CHECK(tg_offsets_done(&o, 10));
  CHECK(tg_offsets_watermark(&o) == 11);
  CHECK(tg_offsets_done(&o, 11));
  CHECK(tg_offsets_watermark(&o) == 14 && tg_offsets_open_count(&o) == 1);
  CHECK(tg_offsets_done(&o, 14));
  CHECK(tg_offsets_watermark(&o) == 15 && tg_offsets_open_count(&o) == 0);
  CHECK(!tg_offsets_add(&o, 14)); /* not ascending */
  CHECK(tg_offsets_add(&o, 20));  /* a gap (compacted or transaction markers) is fine */
  CHECK(tg_offsets_watermark(&o) == 20);
  tg_offsets_reset(&o);
  CHECK(tg_offsets_watermark(&o) == -1);
}

static void test_many(void) {
  struct tg_offsets o = {0};
  tg_offsets_reset(&o);
  for (int64_t off = 0; off < 1000; off++)
    CHECK(tg_offsets_add(&o, off));
  for (int64_t off = 999; off >= 1; off--) /* the reverse order: nothing moves until 0 */
    CHECK(tg_offsets_done(&o, off));
  CHECK(tg_offsets_watermark(&o) == 0 && tg_offsets_open_count(&o) == 1);
  CHECK(tg_offsets_done(&o, 0));
  CHECK(tg_offsets_watermark(&o) == 1000);
  tg_offsets_reset(&o);
}

int main(void) {
  RUN(test_prefix);
  RUN(test_many);
  return check_done("kafka_offsets");
}
