/* SPDX-License-Identifier: Apache-2.0 */
/*
 * comfyui_ws.c - following one ComfyUI job over /ws?clientId= with
 * civetweb's WebSocket client. The socket is opened before the prompt is
 * posted, with the attempt's own clientId, so ComfyUI sends this job's
 * events to it alone: progress (into the metrics), the node executing, the
 * end (execution_success, then "executing" with node null), or
 * execution_error / execution_interrupted. Binary frames are taken as the
 * image only while our prompt's SaveImageWebsocket node executes, up to
 * diffusion.max_image_bytes. Anything odd on the socket is skipped; a
 * socket that closes early leaves the caller to poll /history. The connect
 * runs on a thread of its own so that a server that accepts but never
 * upgrades costs at most 5 s or the deadline, not civetweb's 30 s.
 */
#include "comfyui_int.h"
#include "metrics.h"
#include "tg_log.h"
#include "tg_time.h"

#include <civetweb.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PREVIEW_IMAGE 1 /* server.py BinaryEventTypes.PREVIEW_IMAGE */

struct cf_ws {
  struct mg_connection *conn;
  /* the connect, on its own thread (civetweb's has no timeout of its own) */
  char host[256], path[600], ebuf[256];
  int port, ssl;
  bool connect_done;            /* under lock */
  bool abandoned;               /* under lock: the opener gave up; the connect thread frees */
  pthread_mutex_t lock;
  pthread_cond_t changed;       /* CLOCK_MONOTONIC */
  char rid[TG_MAX_REQUEST_ID_CHARS + 1];
  char ws_node[CF_NODE_ID];
  int64_t max_image;
  /* what arrived (under lock) */
  bool got_status;
  bool closed;
  char node[CF_NODE_ID];        /* the node our prompt executes now */
  char success_pid[96];
  char done_pid[96];            /* "executing" with node null */
  char failed_pid[96];
  char failure[400];
  bool image_too_big;
  bool have_image;
  struct tg_blob image;
};

void cf_ws_global_init(bool ssl) {
  static bool done, done_ssl;
  if (done && (done_ssl || !ssl))
    return;
  /* civetweb counts the calls; TLS is set up when asked for */
  mg_init_library(ssl ? MG_FEATURES_TLS : 0);
  done = true;
  done_ssl = done_ssl || ssl;
}

static void abs_deadline(struct timespec *ts, int64_t mono_ms) {
  ts->tv_sec = (time_t)(mono_ms / 1000);
  ts->tv_nsec = (long)(mono_ms % 1000) * 1000000L;
}

static void copy_pid(char *dst, size_t n, json_t *data) {
  const char *pid = json_string_value(json_object_get(data, "prompt_id"));
  snprintf(dst, n, "%s", pid && strlen(pid) < n ? pid : "?");
}

/* One JSON message {"type", "data"}; called with the lock held. */
static void on_message(cf_ws_t *w, json_t *msg, int *prog_value, int *prog_max) {
  const char *type = json_string_value(json_object_get(msg, "type"));
  json_t *data = json_object_get(msg, "data");
  if (!type || !json_is_object(data))
    return;
  if (strcmp(type, "status") == 0) {
    w->got_status = true;
  } else if (strcmp(type, "executing") == 0) {
    json_t *node = json_object_get(data, "node");
    if (json_is_null(node)) {
      copy_pid(w->done_pid, sizeof(w->done_pid), data);
      w->node[0] = '\0';
    } else {
      const char *n = json_string_value(node);
      snprintf(w->node, sizeof(w->node), "%s", n && strlen(n) < sizeof(w->node) ? n : "");
    }
  } else if (strcmp(type, "progress") == 0) {
    json_t *v = json_object_get(data, "value"), *m = json_object_get(data, "max");
    if (json_is_integer(v) && json_is_integer(m)) {
      *prog_value = (int)json_integer_value(v);
      *prog_max = (int)json_integer_value(m);
    }
  } else if (strcmp(type, "execution_success") == 0) {
    copy_pid(w->success_pid, sizeof(w->success_pid), data);
  } else if (strcmp(type, "execution_error") == 0) {
    copy_pid(w->failed_pid, sizeof(w->failed_pid), data);
    const char *m = json_string_value(json_object_get(data, "exception_message"));
    const char *t = json_string_value(json_object_get(data, "exception_type"));
    const char *n = json_string_value(json_object_get(data, "node_id"));
    snprintf(w->failure, sizeof(w->failure), "node %s: %s%s%s", n ? n : "?", t ? t : "",
             t ? ": " : "", m ? m : "error");
  } else if (strcmp(type, "execution_interrupted") == 0) {
    /* a broadcast: cf_ws_wait() compares the prompt_id with ours */
    copy_pid(w->failed_pid, sizeof(w->failed_pid), data);
    snprintf(w->failure, sizeof(w->failure), "execution interrupted");
  }
}

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Called on civetweb's client thread for every frame. */
static int on_data(struct mg_connection *conn, int bits, char *data, size_t len, void *ud) {
  cf_ws_t *w = ud;
  int op = bits & 0x0F;
  bool fin = bits & 0x80;
  if (op == MG_WEBSOCKET_OPCODE_PING) {
    mg_websocket_client_write(conn, MG_WEBSOCKET_OPCODE_PONG, data, len);
    return 1;
  }
  if (op == MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE) {
    pthread_mutex_lock(&w->lock);
    w->closed = true;
    pthread_cond_broadcast(&w->changed);
    pthread_mutex_unlock(&w->lock);
    return 0;
  }
  if (!fin || (op != MG_WEBSOCKET_OPCODE_TEXT && op != MG_WEBSOCKET_OPCODE_BINARY))
    return 1; /* ComfyUI does not fragment its messages: skip what it never sends */
  if (op == MG_WEBSOCKET_OPCODE_TEXT) {
    json_error_t je;
    json_t *msg = json_loadb(data, len, 0, &je);
    int pv = -1, pm = -1;
    pthread_mutex_lock(&w->lock);
    if (json_is_object(msg))
      on_message(w, msg, &pv, &pm);
    pthread_cond_broadcast(&w->changed);
    pthread_mutex_unlock(&w->lock);
    json_decref(msg);
    if (pm > 0)
      tg_metrics_diffusion_progress(pv, pm);
    return 1;
  }
  /* binary: 4 bytes event type, 4 bytes image type (1 JPEG, 2 PNG), the image */
  if (len < 8 || be32((const unsigned char *)data) != PREVIEW_IMAGE)
    return 1;
  pthread_mutex_lock(&w->lock);
  if (*w->ws_node && strcmp(w->node, w->ws_node) == 0 && !w->have_image && !w->image_too_big) {
    size_t n = len - 8;
    if ((int64_t)n > w->max_image) {
      w->image_too_big = true;
    } else if ((w->image.data = malloc(n ? n : 1))) {
      memcpy(w->image.data, data + 8, n);
      w->image.len = n;
      w->have_image = true;
    }
    pthread_cond_broadcast(&w->changed);
  }
  pthread_mutex_unlock(&w->lock);
  return 1;
}

static void on_close(const struct mg_connection *conn, void *ud) {
  (void)conn;
  cf_ws_t *w = ud;
  pthread_mutex_lock(&w->lock);
  w->closed = true;
  pthread_cond_broadcast(&w->changed);
  pthread_mutex_unlock(&w->lock);
}

static void ws_free(cf_ws_t *w) {
  pthread_mutex_destroy(&w->lock);
  pthread_cond_destroy(&w->changed);
  tg_blob_free(&w->image);
  free(w);
}

/* Connects; hands the connection to the opener, or closes it and frees
 * everything when the opener stopped waiting. */
static void *connect_thread(void *arg) {
  cf_ws_t *w = arg;
  char ebuf[sizeof(w->ebuf)] = "";
  struct mg_connection *conn = mg_connect_websocket_client(w->host, w->port, w->ssl, ebuf,
                                                           sizeof(ebuf), w->path, NULL, on_data,
                                                           on_close, w);
  pthread_mutex_lock(&w->lock);
  bool abandoned = w->abandoned;
  w->conn = conn;
  snprintf(w->ebuf, sizeof(w->ebuf), "%s", ebuf);
  w->connect_done = true;
  pthread_cond_broadcast(&w->changed);
  pthread_mutex_unlock(&w->lock);
  if (abandoned) {
    if (conn)
      mg_close_connection(conn); /* joins the reading thread: no callback after this */
    ws_free(w);
  }
  return NULL;
}

cf_ws_t *cf_ws_open(struct cf_job *j, char *why, size_t n) {
  cf_ws_t *w = calloc(1, sizeof(*w));
  if (!w) {
    snprintf(why, n, "out of memory");
    return NULL;
  }
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&w->changed, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&w->lock, NULL);
  snprintf(w->rid, sizeof(w->rid), "%s", j->rid);
  snprintf(w->ws_node, sizeof(w->ws_node), "%s", j->c->ws_node);
  w->max_image = j->c->max_image_bytes;
  snprintf(w->path, sizeof(w->path), "%s/ws?clientId=%s", j->site->path, j->client_id);
  snprintf(w->host, sizeof(w->host), "%s", j->site->host);
  w->port = j->site->port;
  w->ssl = j->site->ssl;
  /* connect, then the server registers the socket and says hello: wait for
   * both (so that no event of the prompt posted next can go elsewhere), but
   * no longer than 5 s or the job's deadline */
  int64_t until = tg_mono_ms() + (j->c->http_timeout_ms < 5000 ? j->c->http_timeout_ms : 5000);
  if (j->req->deadline_mono_ms && j->req->deadline_mono_ms < until)
    until = j->req->deadline_mono_ms;
  struct timespec ts;
  abs_deadline(&ts, until);
  pthread_t tid;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  int rc = pthread_create(&tid, &attr, connect_thread, w);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    snprintf(why, n, "cannot start the connect thread: %s", strerror(rc));
    ws_free(w);
    return NULL;
  }
  pthread_mutex_lock(&w->lock);
  while (!w->connect_done && pthread_cond_timedwait(&w->changed, &w->lock, &ts) != ETIMEDOUT) {
  }
  if (!w->connect_done || !w->conn) {
    bool late = !w->connect_done;
    snprintf(why, n, "%s", late ? "the WebSocket connect did not finish in time"
                                : *w->ebuf ? w->ebuf : "cannot connect");
    w->abandoned = late; /* the connect thread frees it when it returns */
    pthread_mutex_unlock(&w->lock);
    if (!late)
      ws_free(w);
    return NULL;
  }
  while (!w->got_status && !w->closed &&
         pthread_cond_timedwait(&w->changed, &w->lock, &ts) != ETIMEDOUT) {
  }
  bool ok = w->got_status && !w->closed;
  snprintf(why, n, "%s", w->closed ? "the socket closed before the server's first message"
                                   : "no status message from the server in time");
  pthread_mutex_unlock(&w->lock);
  if (!ok) {
    cf_ws_close(w);
    return NULL;
  }
  return w;
}

enum cf_ws_end cf_ws_wait(cf_ws_t *w, const char *prompt_id, int64_t deadline, char *msg,
                          size_t n, bool *retryable) {
  struct timespec ts;
  abs_deadline(&ts, deadline ? deadline : INT64_MAX / 2);
  enum cf_ws_end end;
  pthread_mutex_lock(&w->lock);
  for (;;) {
    if (w->image_too_big) {
      snprintf(msg, n, "the image sent over /ws is larger than diffusion.max_image_bytes "
               "(%lld)", (long long)w->max_image);
      *retryable = false;
      end = CF_WS_FAILED;
      break;
    }
    if (strcmp(w->failed_pid, prompt_id) == 0) {
      snprintf(msg, n, "%s", w->failure);
      *retryable = true;
      end = CF_WS_FAILED;
      break;
    }
    /* "executing" with node null comes once the history holds the job; with the image
     * in hand, execution_success is enough */
    if (strcmp(w->done_pid, prompt_id) == 0 ||
        (strcmp(w->success_pid, prompt_id) == 0 && w->have_image)) {
      end = CF_WS_DONE;
      break;
    }
    if (w->closed) {
      end = CF_WS_CLOSED;
      break;
    }
    if (deadline && tg_mono_ms() >= deadline) {
      end = CF_WS_LATE;
      break;
    }
    pthread_cond_timedwait(&w->changed, &w->lock, &ts);
  }
  pthread_mutex_unlock(&w->lock);
  return end;
}

bool cf_ws_take_image(cf_ws_t *w, struct tg_blob *image) {
  pthread_mutex_lock(&w->lock);
  bool have = w->have_image;
  if (have) {
    *image = w->image;
    memset(&w->image, 0, sizeof(w->image));
    w->have_image = false;
  }
  pthread_mutex_unlock(&w->lock);
  return have;
}

void cf_ws_close(cf_ws_t *w) {
  if (!w)
    return;
  pthread_mutex_lock(&w->lock);
  bool closed = w->closed;
  pthread_mutex_unlock(&w->lock);
  if (!closed) {
    /* a close frame (1000) lets the reading thread end at once */
    static const char normal[2] = {0x03, (char)0xE8};
    mg_websocket_client_write(w->conn, MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE, normal, 2);
    struct timespec ts;
    abs_deadline(&ts, tg_mono_ms() + 500);
    pthread_mutex_lock(&w->lock);
    while (!w->closed && pthread_cond_timedwait(&w->changed, &w->lock, &ts) != ETIMEDOUT) {
    }
    pthread_mutex_unlock(&w->lock);
  }
  mg_close_connection(w->conn); /* joins civetweb's client thread */
  ws_free(w);
}
