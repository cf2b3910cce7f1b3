/* SPDX-License-Identifier: Apache-2.0 */
/*
 * watch.c - EAS watch: a consumer of a group receives frames as they come,
 * at most _window_ of them uncommitted, over a WebSocket (one binary
 * message per DataFrameProto; pings both ways) or a streaming HTTP response
 * ([4-byte big-endian length][DataFrameProto] records, chunked). One loop
 * serves both; when the connection ends, the consumer's uncommitted frames
 * go to the rest of its group at once.
 */
#include "frames.h"
#include "server_int.h"
#include "tg_log.h"
#include "tg_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_WINDOW 64
#define MAX_WINDOW 1024
#define PING_EVERY_MS 10000

struct watch {
  sch_server_t *srv;
  struct mg_connection *conn;
  struct sch_request req;
  bool websocket;
  uint64_t from_index;
  int window;
  bool index_only;
  bool auto_commit;
  atomic_bool closed;
  pthread_t thread;
  bool thread_started;
};

/* Send one frame; false when the peer is gone. */
static bool send_frame(struct watch *w, const struct sch_frame *f) {
  unsigned char *out = NULL;
  size_t len = 0;
  tg_err_t err = w->websocket ? sch_frame_encode_one(f, w->index_only, &out, &len)
                              : sch_frame_encode_prefixed(f, w->index_only, &out, &len);
  if (err != TG_OK)
    return false;
  int rc;
  if (w->websocket) {
    mg_lock_connection(w->conn);
    rc = mg_websocket_write(w->conn, MG_WEBSOCKET_OPCODE_BINARY, (const char *)out, len);
    mg_unlock_connection(w->conn);
  } else {
    rc = mg_send_chunk(w->conn, (const char *)out, (unsigned)len);
  }
  free(out);
  return rc > 0;
}

static bool send_ping(struct watch *w) {
  if (!w->websocket)
    return true;
  mg_lock_connection(w->conn);
  int rc = mg_websocket_write(w->conn, MG_WEBSOCKET_OPCODE_PING, "tg", 2);
  mg_unlock_connection(w->conn);
  return rc > 0;
}

/* The watch loop: until the peer goes, the server stops, or end-of-stream
 * has been reached with nothing left to send. */
static void watch_loop(struct watch *w) {
  sch_server_t *s = w->srv;
  const struct sch_request *r = &w->req;
  struct sch_cursor cur;
  memset(&cur, 0, sizeof(cur));
  char errstr[512];
  int64_t last_sent = tg_mono_ms(), last_eos_check = 0;
  tg_log(TG_INFO, "event=watch_start service=%s queue=%s gid=%s uid=%s window=%d transport=%s",
         s->conf.services[r->service].name, r->queue == SCH_QUEUE_SINK ? "sink" : "input",
         r->gid, r->uid, w->window, w->websocket ? "websocket" : "http");
  while (!atomic_load(&w->closed) && !atomic_load(&s->stopping)) {
    sch_store_t *st = sch_thread_store(s, r->service, errstr, sizeof(errstr));
    int64_t in_use = 0;
    if (st && !w->auto_commit &&
        sch_store_group_pending(st, r->queue, r->gid, r->uid, &in_use, errstr,
                                sizeof(errstr)) != TG_OK)
      st = NULL;
    /* frames this uid holds from an earlier connection are counted in in_use
     * but not re-sent yet: resend them a window at a time first */
    int room = cur.own_done ? w->window - (int)in_use : w->window;
    struct sch_frame *f = NULL;
    int nf = 0;
    if (st && room > 0 &&
        sch_store_group_read(st, r->queue, r->gid, r->uid, w->from_index, room, w->auto_commit,
                             &cur, &f, &nf, errstr, sizeof(errstr)) != TG_OK) {
      tg_log(TG_WARN, "event=watch_read_failed uid=%s err=\"%s\"", r->uid, errstr);
      nf = 0;
    }
    bool alive = true;
    for (int i = 0; i < nf && alive; i++)
      alive = send_frame(w, &f[i]);
    sch_frames_free(f, nf);
    if (!alive)
      break;
    int64_t now = tg_mono_ms();
    if (nf > 0) {
      last_sent = now;
      continue;
    }
    if (st && room > 0 && now - last_eos_check > 1000) { /* idle: has the stream ended? */
      struct sch_attrs at;
      memset(&at, 0, sizeof(at));
      last_eos_check = now;
      bool ended = sch_store_attributes(st, r->queue, &at, errstr, sizeof(errstr)) == TG_OK &&
                   at.eos && in_use == 0;
      sch_attrs_free(&at);
      if (ended)
        break;
    }
    if (now - last_sent > PING_EVERY_MS) {
      if (!send_ping(w))
        break;
      last_sent = now;
    }
    tg_sleep_ms(st ? 50 : 500);
  }
  sch_store_t *st = sch_thread_store(s, r->service, errstr, sizeof(errstr));
  if (st && sch_store_group_release(st, r->queue, r->gid, r->uid, errstr, sizeof(errstr)) !=
                TG_OK)
    tg_log(TG_WARN, "event=watch_release_failed uid=%s err=\"%s\"", r->uid, errstr);
  tg_log(TG_INFO, "event=watch_end gid=%s uid=%s", r->gid, r->uid);
}

/* Parse the watch parameters; 0 or a status to refuse with. */
static int watch_setup(sch_server_t *s, struct watch *w, char *errstr, size_t n) {
  const struct sch_request *r = &w->req;
  uint64_t window;
  if (!sch_request_u64(r, "_index_", 0, &w->from_index) ||
      !sch_request_u64(r, "_window_", DEFAULT_WINDOW, &window)) {
    snprintf(errstr, n, "bad _index_ or _window_");
    return 400;
  }
  if (*r->request_id || json_object_size(r->tags)) {
    snprintf(errstr, n, "watch takes no requestId or tag filters: give filtered readers get");
    return 400;
  }
  w->window = window == 0 ? DEFAULT_WINDOW : window > MAX_WINDOW ? MAX_WINDOW : (int)window;
  w->index_only = sch_request_flag(r, "_index_only_", false);
  w->auto_commit = sch_request_flag(r, "_auto_commit_", false);
  atomic_int *count = &s->watchers[r->service][r->queue];
  if (atomic_fetch_add(count, 1) >= s->conf.services[r->service].max_watchers) {
    atomic_fetch_sub(count, 1);
    snprintf(errstr, n, "too many watchers");
    return 429;
  }
  return 0;
}

static void watch_done(struct watch *w) {
  atomic_fetch_sub(&w->srv->watchers[w->req.service][w->req.queue], 1);
  sch_request_clear(&w->req);
}

int sch_op_watch_stream(sch_server_t *s, struct mg_connection *c, struct sch_request *r) {
  struct watch w;
  char errstr[256];
  memset(&w, 0, sizeof(w));
  w.srv = s;
  w.conn = c;
  w.req = *r;
  w.req.tags = json_incref(r->tags);
  int status = watch_setup(s, &w, errstr, sizeof(errstr));
  if (status) {
    sch_request_clear(&w.req);
    sch_reply_text(c, status, errstr);
    return status;
  }
  mg_printf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
               "Transfer-Encoding: chunked\r\nCache-Control: no-store\r\n\r\n");
  watch_loop(&w);
  mg_send_chunk(c, "", 0);
  watch_done(&w);
  return 200;
}

/* ---- WebSocket ---------------------------------------------------------- */

static void *ws_thread(void *arg) {
  watch_loop(arg);
  struct watch *w = arg;
  if (!atomic_load(&w->closed)) { /* the loop ended first (eos, stop): close our side */
    mg_lock_connection(w->conn);
    mg_websocket_write(w->conn, MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE, "", 0);
    mg_unlock_connection(w->conn);
  }
  return NULL;
}

static int ws_connect(const struct mg_connection *c, void *data) {
  sch_server_t *s = data;
  struct watch *w = calloc(1, sizeof(*w));
  char errstr[256];
  if (!w)
    return 1;
  w->srv = s;
  w->websocket = true;
  int status = sch_parse_target(s, c, &w->req, errstr, sizeof(errstr));
  if (!status && !sch_authorized(s, c, w->req.service))
    status = 401;
  if (!status && strcmp(w->req.method, "GET") != 0)
    status = 405;
  if (!status && !sch_request_flag(&w->req, "_watch_", false))
    status = 400;
  if (!status)
    status = watch_setup(s, w, errstr, sizeof(errstr));
  if (status) {
    tg_log(TG_INFO, "event=watch_refused status=%d uri=%s", status,
           mg_get_request_info(c)->local_uri);
    sch_request_clear(&w->req); /* watch_setup counts a watcher only when it accepts */
    free(w);
    return 1; /* civetweb closes the connection */
  }
  mg_set_user_connection_data(c, w);
  return 0;
}

static void ws_ready(struct mg_connection *c, void *data) {
  (void)data;
  struct watch *w = mg_get_user_connection_data(c);
  if (!w)
    return;
  w->conn = c;
  w->thread_started = pthread_create(&w->thread, NULL, ws_thread, w) == 0;
}

static int ws_data(struct mg_connection *c, int bits, char *data, size_t len, void *cbdata) {
  (void)cbdata;
  int opcode = bits & 0xf;
  if (opcode == MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE)
    return 0;
  if (opcode == MG_WEBSOCKET_OPCODE_PING) {
    mg_lock_connection(c);
    mg_websocket_write(c, MG_WEBSOCKET_OPCODE_PONG, data, len);
    mg_unlock_connection(c);
  }
  return 1; /* pongs and client messages need nothing */
}

static void ws_close(const struct mg_connection *c, void *data) {
  (void)data;
  struct watch *w = mg_get_user_connection_data(c);
  if (!w)
    return;
  atomic_store(&w->closed, true);
  if (w->thread_started)
    pthread_join(w->thread, NULL);
  watch_done(w);
  free(w);
}

void sch_watch_register(sch_server_t *s) {
  mg_set_websocket_handler(s->ctx, "/api/predict/", ws_connect, ws_ready, ws_data, ws_close, s);
}
