/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server_int.h - what server.c, ops.c and watch.c share: the server state,
 * the per-thread stores, and the reply helpers.
 */
#ifndef SCH_SERVER_INT_H
#define SCH_SERVER_INT_H

#include "request.h"
#include "server.h"
#include "store.h"

#include <civetweb.h>
#include <pthread.h>
#include <stdatomic.h>

struct sch_server_s {
  struct sch_conf conf;
  struct mg_context *ctx;
  sch_control_t *control;         /* the depth readings of /metrics and /v1/autoscale */
  pthread_key_t stores_key;       /* per-thread sch_store_t *[SCH_MAX_SERVICES] */
  atomic_int watchers[SCH_MAX_SERVICES][2];
  atomic_int long_polls[SCH_MAX_SERVICES][2];
  atomic_bool stopping;
};

/* server.c */
sch_store_t *sch_thread_store(sch_server_t *s, int service, char *errstr, size_t n);
void sch_reply_text(struct mg_connection *c, int status, const char *text);
void sch_reply_bytes(struct mg_connection *c, int status, const char *type,
                     const unsigned char *data, size_t len, const char *extra_headers);
int sch_reply_error(struct mg_connection *c, tg_err_t err, const char *errstr);
bool sch_authorized(const sch_server_t *s, const struct mg_connection *c, int service);
int sch_parse_target(sch_server_t *s, const struct mg_connection *c, struct sch_request *r,
                     char *errstr, size_t n);

/* ops.c: one function per EAS operation; each returns the HTTP status sent */
int sch_op_put(sch_server_t *s, struct mg_connection *c, struct sch_request *r);
int sch_op_get(sch_server_t *s, struct mg_connection *c, struct sch_request *r);
int sch_op_attributes(sch_server_t *s, struct mg_connection *c, struct sch_request *r);
int sch_op_commit(sch_server_t *s, struct mg_connection *c, struct sch_request *r);
int sch_op_delete(sch_server_t *s, struct mg_connection *c, struct sch_request *r);
int sch_op_search(sch_server_t *s, struct mg_connection *c, struct sch_request *r);
int sch_op_count(sch_server_t *s, struct mg_connection *c, struct sch_request *r);
int sch_op_eos(sch_server_t *s, struct mg_connection *c, struct sch_request *r);

/* watch.c */
int sch_op_watch_stream(sch_server_t *s, struct mg_connection *c, struct sch_request *r);
void sch_watch_register(sch_server_t *s);

#endif
