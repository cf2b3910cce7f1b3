/* SPDX-License-Identifier: Apache-2.0 */
/*
 * diffusion.c - the registry of diffusion backends.
 */
#include "diffusion.h"

#include <string.h>

static const struct tg_diffusion_ops *const backends[] = {&tg_diffusion_comfyui, &tg_diffusion_wanx,
                                                                NULL};

const struct tg_diffusion_ops *tg_diffusion_find(const char *name) {
  TG_BACKEND_FIND(backends, name);
}
