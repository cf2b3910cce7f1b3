/* placeholder: replaced by the oss backend */
#include "storage.h"
#include <stdio.h>
static tg_err_t b_create(const struct tg_worker_conf *conf, void **state, char *errstr, size_t n) {
  (void)conf; (void)state;
  snprintf(errstr, n, "oss: not built yet");
  return TG_ERR_INVAL;
}
const struct tg_storage_ops tg_storage_oss = {.name = "oss", .create = b_create};
