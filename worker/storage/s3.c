/* placeholder: replaced by the s3 backend */
#include "storage.h"
#include <stdio.h>
static tg_err_t b_create(const struct tg_worker_conf *conf, void **state, char *errstr, size_t n) {
  (void)conf; (void)state;
  snprintf(errstr, n, "s3: not built yet");
  return TG_ERR_INVAL;
}
const struct tg_storage_ops tg_storage_s3 = {.name = "s3", .create = b_create};
