/* placeholder: replaced by the wanx backend */
#include "diffusion.h"
#include <stdio.h>
static tg_err_t w_create(const struct tg_worker_conf *conf, void **state, char *errstr, size_t n) {
  (void)conf; (void)state;
  snprintf(errstr, n, "wanx: not built yet");
  return TG_ERR_INVAL;
}
const struct tg_diffusion_ops tg_diffusion_wanx = {.name = "wanx", .create = w_create};
