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

#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#define DEFAULT_WINDOW 64
#define MAX_WINDOW 1024
#define PING_EVERY_MS 10000      /* WebSocket pings */
#define PEER_CHECK_EVERY_MS 500   /* streaming HTTP: is the reader still there? */

struct watch;
static bool peer_gone(struct watch *w);

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
  int fd;                   /* streaming HTTP: the connection's socket, -1 unknown */
};

/*
 * civetweb does not expose a connection's socket, and an idle streaming
 * response writes nothing, so a reader that went away would go unnoticed
 * until the next frame. Find our socket by its two ports once, then poll
 * it: end-of-file or a hang-up means the reader is gone.
 */
static int find_socket(const struct mg_request_info *ri) {
  struct rlimit rl;
  int max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 1048576 ? (int)rl.rlim_cur
                                                                         : 65536;
  for (int fd = 3; fd < max; fd++) {
    struct sockaddr_storage peer, local;
    socklen_t pl = sizeof(peer), ll = sizeof(local);
    if (getpeername(fd, (struct sockaddr *)&peer, &pl) != 0 ||
        getsockname(fd, (struct sockaddr *)&local, &ll) != 0)
      continue;
    char addr[INET6_ADDRSTRLEN] = "";
    int pport, lport;
    if (peer.ss_family == AF_INET6) {
      const struct sockaddr_in6 *p6 = (const struct sockaddr_in6 *)&peer;
      inet_ntop(AF_INET6, &p6->sin6_addr, addr, sizeof(addr));
      pport = ntohs(p6->sin6_port);
      lport = ntohs(((const struct sockaddr_in6 *)&local)->sin6_port);
    } else if (peer.ss_family == AF_INET) {
      const struct sockaddr_in *p4 = (const struct sockaddr_in *)&peer;
      inet_ntop(AF_INET, &p4->sin_addr, addr, sizeof(addr));
      pport = ntohs(p4->sin_port);
      lport = ntohs(((const struct sockaddr_in *)&local)->sin_port);
    } else {
      continue;
    }
    /* civetweb shows an IPv4-mapped peer as the plain IPv4 address */
    const char *shown = strncmp(addr, "::ffff:", 7) == 0 ? addr + 7 : addr;
    if (pport == ri->remote_port && lport == ri->server_port &&
        strcmp(shown, ri->remote_addr) == 0)
      return fd;
  }
  return -1;
}

static bool peer_gone(struct watch *w) {
  if (w->fd < 0)
    return false;
  struct pollfd p = {.fd = w->fd, .events = POLLIN | POLLRDHUP};
  if (poll(&p, 1, 0) <= 0)
    return false;
  if (p.revents & (POLLRDHUP | POLLHUP | POLLERR))
    return true;
  char c;
  return recv(w->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0; /* orderly shutdown */
}

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

/* Keep-alive while idle: a WebSocket ping. Streaming HTTP has no frame that
 * every SDK skips (Go's reader ends on an empty record), so a dropped HTTP
 * reader is noticed by peer_gone() instead. */
static bool send_ping(struct watch *w) {
  if (!w->websocket)
    return !peer_gone(w);
  mg_lock_connection(w->conn);
  int rc = mg_websocket_write(w->conn, MG_WEBSOCKET_OPCODE_PING, "tg", 2);
  mg_unlock_connection(w->conn);
  return rc > 0;
}

/* Whether a frame passes the watch's requestId and tag filters. */
static bool frame_matches(const struct sch_frame *f, const struct sch_request *r) {
  if (*r->request_id) {
    const char *rid = json_string_value(json_object_get(f->tags, "requestId"));
    if (!rid || strcmp(rid, r->request_id) != 0)
      return false;
  }
  const char *k;
  json_t *v;
  json_object_foreach(r->tags, k, v) {
    const char *have = json_string_value(json_object_get(f->tags, k));
    if (!have || strcmp(have, json_string_value(v)) != 0)
      return false;
  }
  return true;
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
    bool read_new = cur.own_done; /* this read may return new frames, not only history */
    bool filtered = *r->request_id || json_object_size(r->tags);
    struct sch_frame *f = NULL;
    int nf = 0;
    /* a filtered watch commits itself: auto-commit in the store would delete
     * frames it skips, which other groups still need */
    if (st && room > 0 &&
        sch_store_group_read(st, r->queue, r->gid, r->uid, w->from_index, room,
                             w->auto_commit && !filtered, &cur, &f, &nf, errstr,
                             sizeof(errstr)) != TG_OK) {
      tg_log(TG_WARN, "event=watch_read_failed uid=%s err=\"%s\"", r->uid, errstr);
      nf = 0;
    }
    bool alive = true;
    int sent = 0;
    for (int i = 0; i < nf && alive; i++) {
      bool wanted = !filtered || frame_matches(&f[i], r);
      if (wanted) {
        alive = send_frame(w, &f[i]);
        sent++;
      }
      if (alive && filtered && (!wanted || w->auto_commit)) {
        tg_err_t e = wanted ? sch_store_commit(st, r->queue, r->gid, &f[i].index, 1, errstr,
                                               sizeof(errstr))
                            : sch_store_group_ack(st, r->queue, r->gid, &f[i].index, 1, errstr,
                                                  sizeof(errstr));
        if (e != TG_OK)
          tg_log(TG_WARN, "event=watch_ack_failed uid=%s err=\"%s\"", r->uid, errstr);
      }
    }
    sch_frames_free(f, nf);
    if (!alive)
      break;
    int64_t now = tg_mono_ms();
    if (sent > 0)
      last_sent = now;
    if (nf > 0)
      continue;
    if (st && room > 0 && read_new && now - last_eos_check > 1000) {
      /* nothing left to hand out: has the stream ended? */
      struct sch_attrs at;
      memset(&at, 0, sizeof(at));
      last_eos_check = now;
      bool ended = sch_store_attributes(st, r->queue, &at, errstr, sizeof(errstr)) == TG_OK &&
                   at.eos && in_use == 0;
      sch_attrs_free(&at);
      if (ended)
        break;
    }
    if (now - last_sent > (w->websocket ? PING_EVERY_MS : PEER_CHECK_EVERY_MS)) {
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
  else if (st && sch_store_group_forget(st, r->queue, r->gid, r->uid, errstr, sizeof(errstr)) !=
                     TG_OK)
    tg_log(TG_WARN, "event=watch_forget_failed uid=%s err=\"%s\"", r->uid, errstr);
  tg_log(TG_INFO, "event=watch_end gid=%s uid=%s", r->gid, r->uid);
}

/* Parse the watch parameters; 0 or a status to refuse with. */
static int watch_setup(sch_server_t *s, struct watch *w, char *errstr, size_t n) {
  const struct sch_request *r = &w->req;
  uint64_t window;
  if (s->conf.services[r->service].on_kafka) {
    snprintf(errstr, n, "service %s is on Kafka: read its output topic",
             s->conf.services[r->service].name);
    return 404;
  }
  if (!sch_request_u64(r, "_index_", 0, &w->from_index) ||
      !sch_request_u64(r, "_window_", DEFAULT_WINDOW, &window)) {
    snprintf(errstr, n, "bad _index_ or _window_");
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
  /* on the heap: a watch holds a whole request (~10 KiB), and civetweb's
   * worker threads have small stacks (an ASan build overflowed them) */
  struct watch *w = calloc(1, sizeof(*w));
  char errstr[256];
  if (!w) {
    sch_reply_text(c, 503, "out of memory");
    return 503;
  }
  w->srv = s;
  w->conn = c;
  w->req = *r;
  w->req.tags = json_incref(r->tags);
  int status = watch_setup(s, w, errstr, sizeof(errstr));
  if (status) {
    sch_request_clear(&w->req);
    free(w);
    sch_reply_text(c, status, errstr);
    return status;
  }
  w->fd = find_socket(mg_get_request_info(c));
  mg_printf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
               "Transfer-Encoding: chunked\r\nCache-Control: no-store\r\n"
               "Connection: close\r\n\r\n");
  watch_loop(w);
  mg_write(c, "0\r\n\r\n", 5); /* the last chunk: the stream has ended */
  watch_done(w);
  free(w);
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
  w->fd = -1;
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
    char qu[300];
    tg_log(TG_INFO, "event=watch_refused status=%d uri=%s", status,
           tg_logq(qu, sizeof(qu), mg_get_request_info(c)->local_uri));
    /* no handshake was sent yet: answer the upgrade request with a plain status */
    const char *body = status == 401 ? "unauthorized" : status == 404 ? errstr
                       : status == 429 ? "too many watchers" : *errstr ? errstr : "bad request";
    mg_printf((struct mg_connection *)c,
              "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
              "Content-Length: %zu\r\nConnection: close\r\n\r\n%s", status,
              status == 401 ? "Unauthorized" : status == 404 ? "Not Found"
              : status == 429 ? "Too Many Requests" : status == 405 ? "Method Not Allowed"
                              : "Bad Request", strlen(body), body);
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
