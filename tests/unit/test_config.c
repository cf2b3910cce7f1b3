/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_config.c - the worker's configuration (worker/config.c): the
 * defaults pass the cross-key checks; a nested JSON file sets keys (flat
 * dotted keys are accepted too: the loader joins nested names with dots
 * before the look-up); unknown keys, wrong JSON types, out-of-range
 * integers, values outside a key's choices and over-long strings are
 * refused with the full dotted key named; TRIPGEN_* variables beat the
 * file; a Redis password is refused in the file (without echoing it) and
 * accepted from TRIPGEN_REDIS_URL; the printed config is valid JSON with
 * every key of --help-config, the password masked, and loads back to the
 * same config; the cross-key checks; broken files name their path.
 *
 * Every TRIPGEN_* variable of the caller is unset first, and before each
 * test, so the environment cannot change the outcome.
 */
#include "check.h"
#include "config.h"

#include <jansson.h>

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

static char tmpdir[256];

/* ---- helpers ----------------------------------------------------------- */

/* Unset every TRIPGEN_* variable (rescanning: unsetenv reshapes environ). */
static void clear_tripgen_env(void) {
  for (;;) {
    char name[256] = "";
    for (char **e = environ; e && *e; e++)
      if (strncmp(*e, "TRIPGEN_", 8) == 0) {
        const char *eq = strchr(*e, '=');
        size_t len = eq ? (size_t)(eq - *e) : strlen(*e);
        if (len < sizeof(name)) {
          memcpy(name, *e, len);
          name[len] = '\0';
        }
        break;
      }
    if (!*name)
      return;
    if (unsetenv(name) != 0) {
      fprintf(stderr, "cannot unset %s: %s\n", name, strerror(errno));
      abort();
    }
  }
}

static bool tripgen_env_empty(void) {
  for (char **e = environ; e && *e; e++)
    if (strncmp(*e, "TRIPGEN_", 8) == 0)
      return false;
  return true;
}

static bool has(const char *hay, const char *needle) {
  return hay && needle && strstr(hay, needle) != NULL;
}

/* Write @text to a new file under tmpdir; @path gets its name. */
static void write_temp(const char *text, size_t len, char *path, size_t size) {
  snprintf(path, size, "%s/conf-XXXXXX", tmpdir);
  int fd = mkstemp(path);
  if (fd < 0) {
    fprintf(stderr, "mkstemp %s: %s\n", path, strerror(errno));
    abort();
  }
  FILE *f = fdopen(fd, "wb");
  if (!f || fwrite(text, 1, len, f) != len || fclose(f) != 0) {
    fprintf(stderr, "write %s failed\n", path);
    abort();
  }
}

/* Load @json as a config file; @path (may be NULL) gets the file's name. */
static tg_err_t load_json(const char *json, struct tg_worker_conf *c, char *err, size_t n,
                          char *path, size_t psize) {
  char p[512];
  write_temp(json, strlen(json), p, sizeof(p));
  *err = '\0';
  tg_err_t rc = tg_worker_conf_load(c, p, err, n);
  unlink(p);
  if (path)
    snprintf(path, psize, "%s", p);
  return rc;
}

/* The file must load; reports the error otherwise. */
static bool file_ok_at(int line, const char *json, struct tg_worker_conf *c) {
  char err[512];
  tg_err_t rc = load_json(json, c, err, sizeof(err), NULL, 0);
  CHECK_MSG(rc == TG_OK, "line %d: %s refused: %s", line, json, err);
  return rc == TG_OK;
}
#define FILE_OK(json, c) file_ok_at(__LINE__, json, c)

/*
 * The file must be refused, the error naming every needle and, with
 * @want_path, the file (errors of the file itself do; cross-key checks and
 * bad variables name only the key).
 */
static void file_err_at(int line, const char *json, bool want_path, const char *const *needles) {
  struct tg_worker_conf c;
  char err[512], path[512];
  tg_err_t rc = load_json(json, &c, err, sizeof(err), path, sizeof(path));
  CHECK_MSG(rc == TG_ERR_INVAL, "line %d: %s accepted (rc %d)", line, json, (int)rc);
  if (rc == TG_OK)
    return;
  if (want_path)
    CHECK_MSG(has(err, path), "line %d: error does not name the file %s: %s", line, path, err);
  for (const char *const *k = needles; *k; k++)
    CHECK_MSG(has(err, *k), "line %d: %s: error lacks \"%s\": %s", line, json, *k, err);
}
#define FILE_ERR(json, ...)                                                                  \
  file_err_at(__LINE__, json, true, (const char *const[]){__VA_ARGS__, NULL})
#define LOAD_ERR(json, ...)                                                                  \
  file_err_at(__LINE__, json, false, (const char *const[]){__VA_ARGS__, NULL})

/* TRIPGEN_<var>=value with no file must be refused naming every needle. */
static void env_err_at(int line, const char *var, const char *value,
                       const char *const *needles) {
  struct tg_worker_conf c;
  char err[512] = "";
  clear_tripgen_env();
  setenv(var, value, 1);
  tg_err_t rc = tg_worker_conf_load(&c, NULL, err, sizeof(err));
  unsetenv(var);
  CHECK_MSG(rc == TG_ERR_INVAL, "line %d: %s=\"%s\" accepted", line, var, value);
  if (rc == TG_OK)
    return;
  for (const char *const *k = needles; *k; k++)
    CHECK_MSG(has(err, *k), "line %d: %s=\"%s\": error lacks \"%s\": %s", line, var, value, *k,
              err);
}
#define ENV_ERR(var, value, ...)                                                            \
  env_err_at(__LINE__, var, value, (const char *const[]){__VA_ARGS__, NULL})

/* tg_worker_conf_check() of @c must fail naming every needle. */
static void check_err_at(int line, const struct tg_worker_conf *c, const char *const *needles) {
  char err[512] = "";
  tg_err_t rc = tg_worker_conf_check(c, err, sizeof(err));
  CHECK_MSG(rc == TG_ERR_INVAL, "line %d: conf passed tg_worker_conf_check", line);
  if (rc == TG_OK)
    return;
  for (const char *const *k = needles; *k; k++)
    CHECK_MSG(has(err, *k), "line %d: error lacks \"%s\": %s", line, *k, err);
}
#define CHECK_ERR(c, ...) check_err_at(__LINE__, c, (const char *const[]){__VA_ARGS__, NULL})

static bool check_ok_at(int line, const struct tg_worker_conf *c) {
  char err[512] = "";
  tg_err_t rc = tg_worker_conf_check(c, err, sizeof(err));
  CHECK_MSG(rc == TG_OK, "line %d: tg_worker_conf_check: %s", line, err);
  return rc == TG_OK;
}
#define CHECK_OK(c) check_ok_at(__LINE__, c)

/* tg_worker_conf_print() into a malloc'd string */
static char *print_conf(const struct tg_worker_conf *c) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f)
    abort();
  tg_worker_conf_print(c, f);
  fclose(f);
  return buf;
}

/* tg_worker_conf_help() into a malloc'd string */
static char *help_text(bool markdown) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f)
    abort();
  tg_worker_conf_help(f, markdown);
  fclose(f);
  return buf;
}

/* One key of the plain --help-config listing. */
struct help_key {
  char key[64];
  char type[16];
  char def[1024];  /* the default as shown, choices and "" quoting removed */
  char env[96];    /* the variable named on the help line */
};

#define MAX_KEYS 128

/* Parse the plain help: "key type default D[; one of ...]\n    help (env V)\n". */
static size_t help_keys(struct help_key *out, size_t max) {
  char *text = help_text(false);
  size_t count = 0;
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    if (line[0] != ' ') {
      if (count == max)
        break;
      struct help_key *h = &out[count++];
      memset(h, 0, sizeof(*h));
      int used = 0;
      if (sscanf(line, "%63s %15s default %n", h->key, h->type, &used) != 2 || !used) {
        CHECK_MSG(0, "unparsable help line: %s", line);
        continue;
      }
      snprintf(h->def, sizeof(h->def), "%s", line + used);
      char *choices = strstr(h->def, "; one of ");
      if (choices)
        *choices = '\0';
      if (strcmp(h->def, "\"\"") == 0)
        h->def[0] = '\0';
    } else if (count > 0) {
      const char *env = strstr(line, "(env ");
      const char *close = env ? strchr(env, ')') : NULL;
      CHECK_MSG(env && close, "help line without (env ...): %s", line);
      if (env && close) {
        env += 5;
        snprintf(out[count - 1].env, sizeof(out[count - 1].env), "%.*s", (int)(close - env),
                 env);
      }
    }
  }
  free(text);
  return count;
}

/* Follow a dotted key through nested objects. */
static json_t *walk(json_t *root, const char *dotted) {
  char key[128];
  snprintf(key, sizeof(key), "%s", dotted);
  json_t *v = root;
  char *save = NULL;
  for (char *part = strtok_r(key, ".", &save); part && v; part = strtok_r(NULL, ".", &save))
    v = json_is_object(v) ? json_object_get(v, part) : NULL;
  return v;
}

static size_t count_leaves(json_t *v) {
  if (!json_is_object(v))
    return 1;
  size_t n = 0;
  const char *k;
  json_t *child;
  json_object_foreach(v, k, child) n += count_leaves(child);
  return n;
}

/* ---- defaults ------------------------------------------------------------- */

static void test_defaults(void) {
  struct tg_worker_conf c, l;
  char err[256] = "";
  clear_tripgen_env();
  tg_worker_conf_defaults(&c);
  CHECK_OK(&c);
  CHECK_STREQ(c.env, "dev");
  CHECK_STREQ(c.worker_name, "");
  CHECK_STREQ(c.log_level, "info");
  CHECK_STREQ(c.queue.redis_url, "redis://127.0.0.1:6379");
  CHECK_STREQ(c.queue.backend, "redis");
  CHECK_STREQ(c.queue.group, "workers");
  CHECK(c.queue.visibility_timeout_ms == 300000);
  CHECK(c.queue.max_deliveries == 5);
  CHECK(c.housekeeping);
  CHECK(c.lease_refresh_ms == 0);
  CHECK(c.backoff_base_ms == 2000 && c.backoff_max_ms == 300000);
  CHECK(c.diffusion_slots == 1);
  CHECK_STREQ(c.comfyui_url, "http://127.0.0.1:8188");
  CHECK_STREQ(c.bind.prompt, "6.text");
  CHECK_STREQ(c.bind.prefix, "9.filename_prefix");
  CHECK(c.jpeg_quality == 90);
  CHECK_STREQ(c.storage_root, "var/images");
  CHECK_STREQ(c.http_listen, "127.0.0.1:9464");
  CHECK(has(c.negative_prompt, "car"));

  /* no file, no variables: exactly the defaults */
  CHECK(tg_worker_conf_load(&l, NULL, err, sizeof(err)) == TG_OK);
  CHECK(memcmp(&c, &l, sizeof(c)) == 0);

  /* an empty object changes nothing */
  if (FILE_OK("{}", &l))
    CHECK(memcmp(&c, &l, sizeof(c)) == 0);
  /* nor do empty sections */
  if (FILE_OK("{\"queue\": {}, \"comfyui\": {\"bind\": {}}}", &l))
    CHECK(memcmp(&c, &l, sizeof(c)) == 0);
}

/* ---- the file ------------------------------------------------------------ */

static void test_file_nested(void) {
  struct tg_worker_conf c;
  clear_tripgen_env();
  if (!FILE_OK("{\n"
               "  \"env\": \"staging\",\n"
               "  \"worker\": {\"name\": \"worker-0\"},\n"
               "  \"log\": {\"level\": \"debug\"},\n"
               "  \"redis\": {\"url\": \"redis://cache.internal:6380/3\"},\n"
               "  \"queue\": {\"max_deliveries\": 7, \"housekeeping\": false,\n"
               "            \"visibility_timeout_ms\": 60000, \"cap\": 5000},\n"
               "  \"retry\": {\"backoff_base_ms\": 100, \"backoff_max_ms\": 1000},\n"
               "  \"diffusion\": {\"slots\": 3, \"timeout_ms\": 120000},\n"
               "  \"comfyui\": {\"url\": \"https://comfy.internal:8443\",\n"
               "              \"bind\": {\"prompt\": \"12.text\", \"seed\": \"4.noise_seed\"}},\n"
               "  \"postproc\": {\"jpeg_quality\": 75},\n"
               "  \"storage\": {\"root\": \"/srv/images\",\n"
               "              \"public_base_url\": \"https://img.example.com\"},\n"
               "  \"http\": {\"listen\": \"\"},\n"
               "  \"shutdown\": {\"grace_ms\": 0}\n"
               "}\n",
               &c))
    return;
  CHECK_STREQ(c.env, "staging");
  CHECK_STREQ(c.worker_name, "worker-0");
  CHECK_STREQ(c.log_level, "debug");
  CHECK_STREQ(c.queue.redis_url, "redis://cache.internal:6380/3");
  CHECK(c.queue.max_deliveries == 7);
  CHECK(!c.housekeeping);
  CHECK(c.queue.visibility_timeout_ms == 60000);
  CHECK(c.queue.queue_cap == 5000);
  CHECK(c.backoff_base_ms == 100 && c.backoff_max_ms == 1000);
  CHECK(c.diffusion_slots == 3);
  CHECK(c.diffusion_timeout_ms == 120000);
  CHECK_STREQ(c.comfyui_url, "https://comfy.internal:8443");
  CHECK_STREQ(c.bind.prompt, "12.text");
  CHECK_STREQ(c.bind.seed, "4.noise_seed");
  CHECK(c.jpeg_quality == 75);
  CHECK_STREQ(c.storage_root, "/srv/images");
  CHECK_STREQ(c.public_base_url, "https://img.example.com");
  CHECK_STREQ(c.http_listen, "");
  CHECK(c.shutdown_grace_ms == 0);
  /* keys the file leaves out keep their defaults */
  CHECK_STREQ(c.bind.negative, "7.text");
  CHECK(c.postproc_concurrency == 2);
  CHECK(c.take_batch == 4);
  CHECK_STREQ(c.queue.group, "workers");

  /* the bounds themselves are accepted */
  if (FILE_OK("{\"diffusion\": {\"slots\": 64}, \"postproc\": {\"jpeg_quality\": 1},"
              " \"queue\": {\"visibility_timeout_ms\": 100, \"cap\": 10000000}}",
              &c)) {
    CHECK(c.diffusion_slots == 64);
    CHECK(c.jpeg_quality == 1);
    CHECK(c.queue.visibility_timeout_ms == 100);
    CHECK(c.queue.queue_cap == 10000000);
  }
  /* an int64 key beyond 32 bits */
  if (FILE_OK("{\"queue\": {\"result_ttl_ms\": 31622400000}}", &c))
    CHECK(c.queue.result_ttl_ms == 31622400000LL);
}

/*
 * A flat dotted key ("diffusion.slots" at the top level) is accepted: the
 * loader joins the nested names with dots and looks the result up, so the
 * two spellings (and mixtures) reach the same key.
 */
static void test_file_flat_dotted(void) {
  struct tg_worker_conf c;
  clear_tripgen_env();
  if (FILE_OK("{\"diffusion.slots\": 4, \"comfyui.bind.seed\": \"8.seed\","
              " \"queue.housekeeping\": false}",
              &c)) {
    CHECK(c.diffusion_slots == 4);
    CHECK_STREQ(c.bind.seed, "8.seed");
    CHECK(!c.housekeeping);
  }
  if (FILE_OK("{\"comfyui\": {\"bind.width\": \"15.width\"}, \"comfyui.bind\": {\"height\": "
              "\"15.height\"}}",
              &c)) {
    CHECK_STREQ(c.bind.width, "15.width");
    CHECK_STREQ(c.bind.height, "15.height");
  }
  /* flat keys get the same checks as nested ones */
  FILE_ERR("{\"diffusion.slot\": 4}", "diffusion.slot", "unknown key");
  FILE_ERR("{\"diffusion.slots\": 0}", "diffusion.slots", "[1, 64]");
  FILE_ERR("{\"diffusion.slots\": \"4\"}", "diffusion.slots", "expected integer", "string");
}

static void test_file_unknown_key(void) {
  clear_tripgen_env();
  FILE_ERR("{\"comfyui\": {\"bind\": {\"promt\": \"6.text\"}}}", "comfyui.bind.promt",
           "unknown key");
  FILE_ERR("{\"queue\": {\"max_delivery\": 3}}", "queue.max_delivery", "unknown key");
  FILE_ERR("{\"slots\": 1}", "slots", "unknown key");
  FILE_ERR("{\"a\": {\"b\": {\"c\": 1}}}", "a.b.c", "unknown key");
  /* a section name used as a value */
  FILE_ERR("{\"comfyui\": \"http://x:8188\"}", "comfyui", "unknown key");
  /* keys are case sensitive */
  FILE_ERR("{\"Diffusion\": {\"slots\": 2}}", "Diffusion.slots", "unknown key");
  /* an unknown key is refused even after valid ones */
  FILE_ERR("{\"env\": \"prod\", \"diffusion\": {\"slots\": 2, \"gpus\": 1}}", "diffusion.gpus",
           "unknown key");
}

static void test_file_wrong_type(void) {
  struct tg_worker_conf c;
  char err[512] = "", path[512];
  clear_tripgen_env();
  FILE_ERR("{\"diffusion\": {\"slots\": \"4\"}}", "diffusion.slots", "expected integer",
           "string");
  FILE_ERR("{\"diffusion\": {\"slots\": 2.5}}", "diffusion.slots", "expected integer", "number");
  FILE_ERR("{\"diffusion\": {\"slots\": 2.0}}", "diffusion.slots", "expected integer");
  FILE_ERR("{\"diffusion\": {\"slots\": true}}", "diffusion.slots", "expected integer",
           "boolean");
  FILE_ERR("{\"queue\": {\"housekeeping\": 1}}", "queue.housekeeping", "expected boolean",
           "number");
  FILE_ERR("{\"queue\": {\"housekeeping\": \"true\"}}", "queue.housekeeping", "expected boolean",
           "string");
  FILE_ERR("{\"env\": 5}", "env", "expected string", "number");
  FILE_ERR("{\"env\": null}", "env", "expected string", "null");
  FILE_ERR("{\"comfyui\": {\"url\": [\"http://a:1\"]}}", "comfyui.url", "expected string",
           "array");
  FILE_ERR("{\"storage\": {\"root\": false}}", "storage.root", "expected string", "boolean");
  /* an object where a value belongs: refused, naming at least the key */
  FILE_ERR("{\"env\": {\"name\": \"prod\"}}", "env");

  /*
   * An object given for a value key is type-checked, not taken for a
   * section (an empty one would otherwise pass and keep the default).
   */
  tg_err_t rc = load_json("{\"diffusion\": {\"slots\": {}}}", &c, err, sizeof(err), path,
                          sizeof(path));
  CHECK_MSG(rc == TG_ERR_INVAL,
            "{\"diffusion\": {\"slots\": {}}} accepted (slots "
            "kept %d); want \"diffusion.slots: expected integer, got object\"",
            c.diffusion_slots);
  if (rc != TG_OK)
    CHECK_MSG(has(err, "diffusion.slots") && has(err, "object"), "error: %s", err);
  rc = load_json("{\"env\": {\"name\": \"prod\"}}", &c, err, sizeof(err), path, sizeof(path));
  if (rc != TG_OK)
    CHECK_MSG(has(err, "env: expected string, got object"),
              "an object for the string key env is reported as "
              "an unknown sub-key, not a type error: %s",
              err);
}

static void test_file_range(void) {
  clear_tripgen_env();
  FILE_ERR("{\"diffusion\": {\"slots\": 0}}", "diffusion.slots", "out of range", "[1, 64]");
  FILE_ERR("{\"diffusion\": {\"slots\": 65}}", "diffusion.slots", "65", "[1, 64]");
  FILE_ERR("{\"diffusion\": {\"slots\": -1}}", "diffusion.slots", "-1", "[1, 64]");
  /* not truncated to int before the range check (2^32 + 1 would be 1) */
  FILE_ERR("{\"diffusion\": {\"slots\": 4294967297}}", "diffusion.slots", "4294967297",
           "[1, 64]");
  FILE_ERR("{\"postproc\": {\"jpeg_quality\": 101}}", "postproc.jpeg_quality", "[1, 100]");
  FILE_ERR("{\"queue\": {\"visibility_timeout_ms\": 99}}", "queue.visibility_timeout_ms",
           "[100, 86400000]");
  FILE_ERR("{\"queue\": {\"cap\": 10000001}}", "queue.cap", "[1, 10000000]");
  FILE_ERR("{\"queue\": {\"result_ttl_ms\": 31622400001}}", "queue.result_ttl_ms",
           "[1000, 31622400000]");
  FILE_ERR("{\"retry\": {\"max_attempts\": 0}}", "retry.max_attempts", "out of range");
  FILE_ERR("{\"comfyui\": {\"http_retries\": 11}}", "comfyui.http_retries", "[0, 10]");
  FILE_ERR("{\"shutdown\": {\"grace_ms\": -5}}", "shutdown.grace_ms", "[0, 3600000]");
  /* beyond int64: jansson refuses the number; still names the file */
  FILE_ERR("{\"queue\": {\"cap\": 99999999999999999999}}", "invalid JSON");
}

/* kafka.conf: an object of strings, secrets only by reference */
static void test_kafka_conf(void) {
  struct tg_worker_conf c;
  clear_tripgen_env();
  if (FILE_OK("{\"kafka\": {\"brokers\": \"k1:9092,k2:9092\", \"exactly_once\": true, "
              "\"conf\": {\"security.protocol\": \"SASL_SSL\", "
              "\"sasl.password\": \"env:KAFKA_PW\"}}}", &c)) {
    CHECK_STREQ(c.queue.kafka.brokers, "k1:9092,k2:9092");
    CHECK(c.queue.kafka.exactly_once);
    CHECK_STREQ(c.queue.kafka.props, "security.protocol=SASL_SSL\nsasl.password=env:KAFKA_PW\n");
  }
  FILE_ERR("{\"kafka\": {\"conf\": {\"sasl.password\": \"hunter2\"}}}", "kafka.conf",
           "env:NAME");
  FILE_ERR("{\"kafka\": {\"conf\": {\"acks\": 1}}}", "kafka.conf", "string");
  FILE_ERR("{\"kafka\": {\"conf\": \"acks=all\"}}", "kafka.conf", "object");
  FILE_ERR("{\"kafka\": {\"max_in_flight\": 0}}", "kafka.max_in_flight", "range");
  setenv("TRIPGEN_KAFKA_CONF", "acks=all;sasl.password=literal-from-env", 1);
  char err[256];
  CHECK(tg_worker_conf_load(&c, NULL, err, sizeof(err)) == TG_OK);
  CHECK_STREQ(c.queue.kafka.props, "acks=all\nsasl.password=literal-from-env");
  char *printed = print_conf(&c);
  CHECK(printed && !has(printed, "literal-from-env") && has(printed, "\"acks\": \"all\""));
  free(printed);
  setenv("TRIPGEN_KAFKA_CONF", "acks", 1);
  CHECK(tg_worker_conf_load(&c, NULL, err, sizeof(err)) == TG_ERR_INVAL &&
        has(err, "name=value"));
  clear_tripgen_env();
}

static void test_file_choices(void) {
  struct tg_worker_conf c;
  clear_tripgen_env();
  FILE_ERR("{\"log\": {\"level\": \"verbose\"}}", "log.level", "\"verbose\"",
           "debug,info,warn,error");
  FILE_ERR("{\"log\": {\"level\": \"INFO\"}}", "log.level", "debug,info,warn,error");
  FILE_ERR("{\"log\": {\"level\": \"\"}}", "log.level", "debug,info,warn,error");
  /* a prefix of a choice is not a choice */
  FILE_ERR("{\"log\": {\"level\": \"inf\"}}", "log.level", "debug,info,warn,error");
  FILE_ERR("{\"queue\": {\"backend\": \"rabbitmq\"}}", "queue.backend", "rabbitmq",
           "redis,kafka");
  if (FILE_OK("{\"queue\": {\"backend\": \"kafka\"}}", &c))
    CHECK_STREQ(c.queue.backend, "kafka");
  FILE_ERR("{\"diffusion\": {\"backend\": \"a1111\"}}", "diffusion.backend", "comfyui");
  FILE_ERR("{\"storage\": {\"backend\": \"gcs\"}}", "storage.backend", "file,oss,s3");
  FILE_ERR("{\"prompt\": {\"backend\": \"llm\"}}", "prompt.backend", "template");
  FILE_ERR("{\"postproc\": {\"backend\": \"gpu\"}}", "postproc.backend", "cpu");
  const char *levels[] = {"debug", "info", "warn", "error"};
  for (size_t i = 0; i < 4; i++) {
    char json[64];
    snprintf(json, sizeof(json), "{\"log\": {\"level\": \"%s\"}}", levels[i]);
    if (FILE_OK(json, &c))
      CHECK_STREQ(c.log_level, levels[i]);
  }
}

static void test_file_too_long(void) {
  struct tg_worker_conf c;
  char json[2048], s[1200];
  clear_tripgen_env();

  /* env: 32 characters fit, 33 do not */
  memset(s, 'a', 33);
  s[33] = '\0';
  snprintf(json, sizeof(json), "{\"env\": \"%s\"}", s);
  FILE_ERR(json, "env", "longer than 32 bytes");
  s[32] = '\0';
  snprintf(json, sizeof(json), "{\"env\": \"%s\"}", s);
  if (FILE_OK(json, &c))
    CHECK(strlen(c.env) == 32);

  /* a binding: 63 bytes fit, 64 do not */
  memset(s, 'x', sizeof(s));
  memcpy(s, "6.", 2);
  s[63] = '\0';
  snprintf(json, sizeof(json), "{\"comfyui\": {\"bind\": {\"prompt\": \"%s\"}}}", s);
  if (FILE_OK(json, &c))
    CHECK(strlen(c.bind.prompt) == 63);
  s[63] = 'x';
  s[64] = '\0';
  snprintf(json, sizeof(json), "{\"comfyui\": {\"bind\": {\"prompt\": \"%s\"}}}", s);
  FILE_ERR(json, "comfyui.bind.prompt", "longer than 63 bytes");

  /* a URL of 512 bytes */
  memset(s, 'h', sizeof(s));
  memcpy(s, "http://", 7);
  s[512] = '\0';
  snprintf(json, sizeof(json), "{\"dashscope\": {\"url\": \"%s\"}}", s);
  FILE_ERR(json, "dashscope.url", "longer than 511 bytes");

  /* the same limit from the environment */
  ENV_ERR("TRIPGEN_DASHSCOPE_URL", s, "dashscope.url", "TRIPGEN_DASHSCOPE_URL", "longer than 511");

  /* bytes, not characters: six three-byte characters overflow log.level's 15 */
  snprintf(json, sizeof(json), "{\"log\": {\"level\": \"%s\"}}",
           "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac");
  FILE_ERR(json, "log.level", "longer than 15 bytes");
}

/* ---- the environment ------------------------------------------------------ */

static void test_env_bool(void) {
  struct tg_worker_conf c;
  char err[256] = "";
  const struct {
    const char *v;
    bool want;
  } ok[] = {{"true", true}, {"false", false}, {"1", true}, {"0", false}};
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
    clear_tripgen_env();
    setenv("TRIPGEN_QUEUE_HOUSEKEEPING", ok[i].v, 1);
    tg_err_t rc = tg_worker_conf_load(&c, NULL, err, sizeof(err));
    CHECK_MSG(rc == TG_OK, "TRIPGEN_QUEUE_HOUSEKEEPING=%s: %s", ok[i].v, err);
    if (rc == TG_OK)
      CHECK_MSG(c.housekeeping == ok[i].want, "TRIPGEN_QUEUE_HOUSEKEEPING=%s", ok[i].v);
  }
  /* the variable beats the file both ways */
  setenv("TRIPGEN_QUEUE_HOUSEKEEPING", "1", 1);
  if (FILE_OK("{\"queue\": {\"housekeeping\": false}}", &c))
    CHECK(c.housekeeping);
  setenv("TRIPGEN_QUEUE_HOUSEKEEPING", "false", 1);
  if (FILE_OK("{\"queue\": {\"housekeeping\": true}}", &c))
    CHECK(!c.housekeeping);
  unsetenv("TRIPGEN_QUEUE_HOUSEKEEPING");

  ENV_ERR("TRIPGEN_QUEUE_HOUSEKEEPING", "yes", "queue.housekeeping", "TRIPGEN_QUEUE_HOUSEKEEPING",
          "\"yes\"", "true or false");
  ENV_ERR("TRIPGEN_QUEUE_HOUSEKEEPING", "TRUE", "queue.housekeeping", "true or false");
  ENV_ERR("TRIPGEN_QUEUE_HOUSEKEEPING", "", "queue.housekeeping", "true or false");
  ENV_ERR("TRIPGEN_QUEUE_HOUSEKEEPING", "2", "queue.housekeeping", "true or false");
}

static void test_env_values(void) {
  struct tg_worker_conf c;
  char err[256] = "";
  clear_tripgen_env();
  /* no file: defaults + the variables */
  setenv("TRIPGEN_DIFFUSION_SLOTS", "8", 1);
  setenv("TRIPGEN_COMFYUI_BIND_PROMPT", "31.text", 1);
  setenv("TRIPGEN_QUEUE_VISIBILITY_TIMEOUT_MS", "45000", 1);
  setenv("TRIPGEN_LOG_LEVEL", "warn", 1);
  setenv("TRIPGEN_WORKER_NAME", "tripgen-worker-2", 1);
  tg_err_t rc = tg_worker_conf_load(&c, NULL, err, sizeof(err));
  CHECK_MSG(rc == TG_OK, "%s", err);
  if (rc == TG_OK) {
    CHECK(c.diffusion_slots == 8);
    CHECK_STREQ(c.bind.prompt, "31.text");
    CHECK(c.queue.visibility_timeout_ms == 45000);
    CHECK_STREQ(c.log_level, "warn");
    CHECK_STREQ(c.worker_name, "tripgen-worker-2");
  }
  clear_tripgen_env();

  /* integers from text */
  ENV_ERR("TRIPGEN_DIFFUSION_SLOTS", "0", "diffusion.slots", "TRIPGEN_DIFFUSION_SLOTS",
          "out of range", "[1, 64]");
  ENV_ERR("TRIPGEN_DIFFUSION_SLOTS", "abc", "diffusion.slots", "TRIPGEN_DIFFUSION_SLOTS",
          "expected an integer", "\"abc\"");
  ENV_ERR("TRIPGEN_DIFFUSION_SLOTS", "4x", "diffusion.slots", "expected an integer");
  ENV_ERR("TRIPGEN_DIFFUSION_SLOTS", "", "diffusion.slots", "expected an integer");
  ENV_ERR("TRIPGEN_DIFFUSION_SLOTS", "2.0", "diffusion.slots", "expected an integer");
  ENV_ERR("TRIPGEN_DIFFUSION_SLOTS", "4294967297", "diffusion.slots", "out of range");
  ENV_ERR("TRIPGEN_QUEUE_CAP", "99999999999999999999", "queue.cap", "expected an integer");
  ENV_ERR("TRIPGEN_LOG_LEVEL", "trace", "log.level", "TRIPGEN_LOG_LEVEL", "\"trace\"",
          "debug,info,warn,error");
  ENV_ERR("TRIPGEN_ENV", "Prod", "env", "\"Prod\"");
  /* an empty variable sets the key to empty, and the checks still run */
  ENV_ERR("TRIPGEN_STORAGE_ROOT", "", "storage.root", "empty");
  ENV_ERR("TRIPGEN_COMFYUI_URL", "ftp://comfy:8188", "comfyui.url", "http://");
}

static void test_env_beats_file(void) {
  struct tg_worker_conf c;
  const char *file = "{\"env\": \"staging\", \"diffusion\": {\"slots\": 2},"
                     " \"comfyui\": {\"url\": \"http://file-comfy:8188\"},"
                     " \"redis\": {\"url\": \"redis://file-redis:6379\"}}";
  clear_tripgen_env();
  if (FILE_OK(file, &c)) {
    CHECK_STREQ(c.env, "staging");
    CHECK(c.diffusion_slots == 2);
    CHECK_STREQ(c.comfyui_url, "http://file-comfy:8188");
    CHECK_STREQ(c.queue.redis_url, "redis://file-redis:6379");
  }
  setenv("TRIPGEN_DIFFUSION_SLOTS", "5", 1);
  setenv("TRIPGEN_COMFYUI_URL", "https://env-comfy:8443", 1);
  setenv("TRIPGEN_ENV", "prod", 1);
  setenv("TRIPGEN_REDIS_URL", "redis://env-redis:6380/1", 1);
  if (FILE_OK(file, &c)) {
    CHECK_STREQ(c.env, "prod");
    CHECK(c.diffusion_slots == 5);
    CHECK_STREQ(c.comfyui_url, "https://env-comfy:8443");
    CHECK_STREQ(c.queue.redis_url, "redis://env-redis:6380/1");
  }
  /* one variable alone overrides only its key */
  clear_tripgen_env();
  setenv("TRIPGEN_DIFFUSION_SLOTS", "6", 1);
  if (FILE_OK(file, &c)) {
    CHECK(c.diffusion_slots == 6);
    CHECK_STREQ(c.env, "staging");
    CHECK_STREQ(c.comfyui_url, "http://file-comfy:8188");
  }
  /* a bad variable fails the load even though the file is fine */
  setenv("TRIPGEN_DIFFUSION_SLOTS", "65", 1);
  LOAD_ERR(file, "diffusion.slots", "TRIPGEN_DIFFUSION_SLOTS", "[1, 64]");
  clear_tripgen_env();
  /* a variable repairs nothing in a bad file: the file is refused first */
  setenv("TRIPGEN_DIFFUSION_SLOTS", "3", 1);
  FILE_ERR("{\"diffusion\": {\"slots\": 0}}", "diffusion.slots", "config file");
  clear_tripgen_env();
  /* variables that name no key are not config keys (TRIPGEN_CONFIG is main.c's) */
  setenv("TRIPGEN_CONFIG", "/nonexistent.json", 1);
  if (FILE_OK(file, &c))
    CHECK(c.diffusion_slots == 2);
  clear_tripgen_env();
}

/* ---- the Redis password ------------------------------------------------- */

static void test_redis_password(void) {
  struct tg_worker_conf c;
  char err[512] = "", path[512];
  const char *secret = "hunter2-Secret";
  clear_tripgen_env();

  /* in the file: refused, naming the key and the variable, never the password */
  const char *files[] = {
      "{\"redis\": {\"url\": \"redis://:hunter2-Secret@cache:6379/0\"}}",
      "{\"redis\": {\"url\": \"redis://alice:hunter2-Secret@cache:6379\"}}",
      "{\"redis.url\": \"redis://:hunter2-Secret@cache\"}",
      "{\"redis\": {\"url\": \"redis://:hunter2%2DSecret@cache\"}}",
  };
  for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
    tg_err_t rc = load_json(files[i], &c, err, sizeof(err), path, sizeof(path));
    CHECK_MSG(rc == TG_ERR_INVAL, "%s accepted", files[i]);
    CHECK_MSG(has(err, path), "error lacks the path: %s", err);
    CHECK_MSG(has(err, "redis.url") && has(err, "password") && has(err, "TRIPGEN_REDIS_URL"),
              "error: %s", err);
    CHECK_MSG(!has(err, secret) && !has(err, "hunter2"), "error leaks the password: %s", err);
  }
  /* a user without a password is not a secret */
  if (FILE_OK("{\"redis\": {\"url\": \"redis://alice:@cache:6379\"}}", &c))
    CHECK_STREQ(c.queue.redis_url, "redis://alice:@cache:6379");

  /* the same URL from the environment: accepted */
  setenv("TRIPGEN_REDIS_URL", "redis://alice:hunter2-Secret@cache:6379/0", 1);
  tg_err_t rc = tg_worker_conf_load(&c, NULL, err, sizeof(err));
  CHECK_MSG(rc == TG_OK, "TRIPGEN_REDIS_URL with a password refused: %s", err);
  if (rc == TG_OK)
    CHECK_STREQ(c.queue.redis_url, "redis://alice:hunter2-Secret@cache:6379/0");
  /* ...also beside a file without one */
  if (FILE_OK("{\"redis\": {\"url\": \"redis://cache:6379\"}, \"env\": \"prod\"}", &c))
    CHECK_STREQ(c.queue.redis_url, "redis://alice:hunter2-Secret@cache:6379/0");
  /* ...but a file that holds one is refused even when the variable overrides it */
  rc = load_json(files[0], &c, err, sizeof(err), path, sizeof(path));
  CHECK_MSG(rc == TG_ERR_INVAL, "file with a password accepted beside TRIPGEN_REDIS_URL");
  CHECK_MSG(!has(err, "hunter2"), "error leaks the password: %s", err);

  /*
   * A password in a malformed URL of the file (here: port 0) is refused
   * too, even when TRIPGEN_REDIS_URL replaces it.
   */
  rc = load_json("{\"redis\": {\"url\": \"redis://:hunter2-Secret@cache:0\"}}", &c, err,
                 sizeof(err), path, sizeof(path));
  CHECK_MSG(rc == TG_ERR_INVAL,
            "a password in a malformed redis.url of the "
            "file is accepted when TRIPGEN_REDIS_URL overrides it");
  CHECK_MSG(!has(err, "hunter2"), "error leaks the password: %s", err);
  unsetenv("TRIPGEN_REDIS_URL");
  /* without the variable it is refused (the URL is bad), without the password shown */
  rc = load_json("{\"redis\": {\"url\": \"redis://:hunter2-Secret@cache:0\"}}", &c, err,
                 sizeof(err), path, sizeof(path));
  CHECK(rc == TG_ERR_INVAL);
  CHECK_MSG(has(err, "redis.url") && !has(err, "hunter2"), "error: %s", err);

  /* a bad URL from the variable: refused, the password not echoed */
  ENV_ERR("TRIPGEN_REDIS_URL", "redis://:hunter2-Secret@cache:99999", "redis.url", "port");
  clear_tripgen_env();
  setenv("TRIPGEN_REDIS_URL", "redis://:hunter2-Secret@cache:99999", 1);
  rc = tg_worker_conf_load(&c, NULL, err, sizeof(err));
  CHECK(rc == TG_ERR_INVAL && !has(err, "hunter2"));
  ENV_ERR("TRIPGEN_REDIS_URL", "http://cache:6379", "redis.url");
  ENV_ERR("TRIPGEN_REDIS_URL", "", "redis.url");
  clear_tripgen_env();
}

/* ---- printing and --help-config --------------------------------------- */

static void test_print(void) {
  struct tg_worker_conf c, again;
  struct help_key *keys = calloc(MAX_KEYS, sizeof(*keys));
  char err[512] = "";
  clear_tripgen_env();
  if (!keys)
    abort();
  size_t nkeys = help_keys(keys, MAX_KEYS);
  CHECK_MSG(nkeys >= 40 && nkeys < MAX_KEYS, "%zu keys in --help-config", nkeys);

  setenv("TRIPGEN_REDIS_URL", "redis://alice:pw-do-not-print@cache:6380/2", 1);
  setenv("TRIPGEN_DIFFUSION_SLOTS", "7", 1);
  setenv("TRIPGEN_QUEUE_HOUSEKEEPING", "false", 1);
  tg_err_t rc = tg_worker_conf_load(&c, NULL, err, sizeof(err));
  CHECK_MSG(rc == TG_OK, "%s", err);
  clear_tripgen_env();
  if (rc != TG_OK) {
    free(keys);
    return;
  }
  char *out = print_conf(&c);
  CHECK(out != NULL);
  CHECK_MSG(!has(out, "pw-do-not-print"), "print leaks the password:\n%s", out);
  CHECK(has(out, "***"));

  json_error_t je;
  json_t *root = json_loads(out ? out : "", 0, &je);
  CHECK_MSG(root && json_is_object(root), "print is not a JSON object: %s (line %d)", je.text,
            je.line);
  if (root) {
    /* every key of --help-config, nested by its dots, and nothing else */
    for (size_t i = 0; i < nkeys; i++) {
      json_t *v = walk(root, keys[i].key);
      CHECK_MSG(v != NULL, "print lacks %s", keys[i].key);
      if (!v)
        continue;
      const char *t = keys[i].type;
      if (strcmp(t, "object") == 0 && json_is_object(v)) { /* a map: one value */
        const char *dot = strrchr(keys[i].key, '.');
        char parent[128];
        snprintf(parent, sizeof(parent), "%.*s", (int)(dot - keys[i].key), keys[i].key);
        json_object_set_new(walk(root, parent), dot + 1, json_null());
        continue;
      }
      CHECK_MSG((strcmp(t, "string") == 0 && json_is_string(v)) ||
                    (strcmp(t, "int") == 0 && json_is_integer(v)) ||
                    (strcmp(t, "bool") == 0 && json_is_boolean(v)),
                "%s: printed as JSON type %d, help says %s", keys[i].key, (int)json_typeof(v),
                t);
    }
    CHECK_MSG(count_leaves(root) == nkeys, "print has %zu values, help %zu keys",
              count_leaves(root), nkeys);
    json_t *v = walk(root, "redis.url");
    CHECK_STREQ(json_string_value(v), "redis://alice:***@cache:6380/2");
    CHECK(json_integer_value(walk(root, "diffusion.slots")) == 7);
    CHECK(json_is_false(walk(root, "queue.housekeeping")));
    CHECK_STREQ(json_string_value(walk(root, "env")), "dev");
    CHECK_STREQ(json_string_value(walk(root, "comfyui.bind.prompt")), "6.text");
    CHECK(json_integer_value(walk(root, "queue.visibility_timeout_ms")) == 300000);
    json_decref(root);
  }

  /* the printed defaults load back as a config file and print the same */
  tg_worker_conf_defaults(&c);
  char *d1 = print_conf(&c);
  if (d1 && FILE_OK(d1, &again)) {
    CHECK(memcmp(&c, &again, sizeof(c)) == 0);
    char *d2 = print_conf(&again);
    CHECK_STREQ(d2, d1);
    free(d2);
  }
  /* a non-default config too (no password: the file may not hold one) */
  if (FILE_OK("{\"env\": \"prod\", \"diffusion\": {\"slots\": 9}, \"comfyui\": {\"bind\": "
              "{\"seed\": \"3.noise_seed\"}}, \"queue\": {\"housekeeping\": false}, "
              "\"http\": {\"listen\": \"\"}, \"worker\": {\"name\": \"w-1\"}}",
              &c)) {
    char *p1 = print_conf(&c);
    if (p1 && FILE_OK(p1, &again)) {
      CHECK(memcmp(&c, &again, sizeof(c)) == 0);
      CHECK(again.diffusion_slots == 9 && !again.housekeeping);
      CHECK_STREQ(again.http_listen, "");
    }
    free(p1);
  }
  /* an unparsable URL (set behind the loader's back) prints no raw text */
  tg_worker_conf_defaults(&c);
  snprintf(c.queue.redis_url, sizeof(c.queue.redis_url), "redis://:hunter2@cache:0");
  char *bad = print_conf(&c);
  CHECK_MSG(!has(bad, "hunter2"), "print leaks an invalid URL's password:\n%s", bad);
  free(bad);
  free(d1);
  free(out);
  free(keys);
}

static void test_help(void) {
  struct help_key *keys = calloc(MAX_KEYS, sizeof(*keys));
  struct tg_worker_conf c, d;
  char err[512] = "";
  clear_tripgen_env();
  if (!keys)
    abort();
  size_t nkeys = help_keys(keys, MAX_KEYS);
  const char *known[] = {"env", "redis.url", "queue.max_deliveries", "queue.housekeeping",
                         "diffusion.slots", "comfyui.url", "comfyui.bind.prefix",
                         "storage.root", "http.listen", "shutdown.grace_ms"};
  for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++) {
    bool found = false;
    for (size_t i = 0; i < nkeys; i++)
      found |= strcmp(keys[i].key, known[k]) == 0;
    CHECK_MSG(found, "--help-config lacks %s", known[k]);
  }
  for (size_t i = 0; i < nkeys; i++) {
    /* the variable named is TRIPGEN_ + the key, dots as underscores, upper case */
    char want[96];
    size_t o = (size_t)snprintf(want, sizeof(want), "TRIPGEN_");
    for (const char *p = keys[i].key; *p && o + 1 < sizeof(want); p++)
      want[o++] = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
    want[o] = '\0';
    CHECK_STREQ(keys[i].env, want);
    for (size_t j = 0; j < i; j++)
      CHECK_MSG(strcmp(keys[i].env, keys[j].env) != 0, "%s and %s share %s", keys[i].key,
                keys[j].key, keys[i].env);
  }
  /* every variable of the help works: each set to its default changes nothing */
  tg_worker_conf_defaults(&d);
  for (size_t i = 0; i < nkeys; i++)
    setenv(keys[i].env, keys[i].def, 1);
  tg_err_t rc = tg_worker_conf_load(&c, NULL, err, sizeof(err));
  clear_tripgen_env();
  CHECK_MSG(rc == TG_OK, "every TRIPGEN_* set to its default: %s", err);
  if (rc == TG_OK)
    CHECK(memcmp(&c, &d, sizeof(c)) == 0);
  /* ...and each variable really reaches its key */
  for (size_t i = 0; i < nkeys; i++) {
    const char *v = NULL;
    if (strcmp(keys[i].type, "int") == 0)
      v = "abc";
    else if (strcmp(keys[i].type, "bool") == 0)
      v = "maybe";
    else
      continue;
    ENV_ERR(keys[i].env, v, keys[i].key, keys[i].env);
  }

  /* the Markdown table: a header, a separator and one row per key */
  char *md = help_text(true);
  size_t lines = 0;
  for (const char *p = md; p && *p; p++)
    lines += *p == '\n';
  CHECK_MSG(lines == nkeys + 2, "markdown: %zu lines for %zu keys", lines, nkeys);
  CHECK(md && strncmp(md, "| key | type | default | variable | meaning |", 45) == 0);
  for (size_t i = 0; i < nkeys; i++) {
    char cell[128];
    snprintf(cell, sizeof(cell), "| `%s` |", keys[i].key);
    CHECK_MSG(has(md, cell), "markdown lacks %s", cell);
    snprintf(cell, sizeof(cell), "`%s`", keys[i].env);
    CHECK_MSG(has(md, cell), "markdown lacks %s", cell);
  }
  free(md);
  free(keys);
}

/* ---- cross-key checks ------------------------------------------------------ */

static void test_cross_keys(void) {
  struct tg_worker_conf d, c;
  tg_worker_conf_defaults(&d);
  clear_tripgen_env();

  c = d;
  c.backoff_base_ms = 400000;
  c.backoff_max_ms = 300000;
  CHECK_ERR(&c, "retry.backoff_base_ms", "retry.backoff_max_ms");
  c.backoff_base_ms = c.backoff_max_ms;
  CHECK_OK(&c);

  c = d;
  c.lease_refresh_ms = c.queue.visibility_timeout_ms;
  CHECK_ERR(&c, "queue.lease_refresh_ms", "queue.visibility_timeout_ms");
  c.lease_refresh_ms = c.queue.visibility_timeout_ms + 1;
  CHECK_ERR(&c, "queue.lease_refresh_ms");
  c.lease_refresh_ms = c.queue.visibility_timeout_ms - 1;
  CHECK_OK(&c);
  c.lease_refresh_ms = 0; /* a third of the visibility timeout */
  c.queue.visibility_timeout_ms = 100;
  CHECK_OK(&c);

  const char *bad_urls[] = {"ftp://comfy:8188", "comfy:8188", "", "http:/comfy"};
  for (size_t i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++) {
    c = d;
    snprintf(c.comfyui_url, sizeof(c.comfyui_url), "%s", bad_urls[i]);
    CHECK_ERR(&c, "comfyui.url", "http://");
  }
  c = d;
  snprintf(c.comfyui_url, sizeof(c.comfyui_url), "https://comfy.example:443/base");
  CHECK_OK(&c);

  const char *bad_binds[] = {"6text", ".text", "6.", "6.text.x", "", "."};
  for (size_t i = 0; i < sizeof(bad_binds) / sizeof(bad_binds[0]); i++) {
    char want[80];
    snprintf(want, sizeof(want), "\"%s\"", bad_binds[i]);
    c = d;
    snprintf(c.bind.prompt, sizeof(c.bind.prompt), "%s", bad_binds[i]);
    CHECK_ERR(&c, "comfyui.bind.prompt", want);
    c = d;
    snprintf(c.bind.prefix, sizeof(c.bind.prefix), "%s", bad_binds[i]);
    if (*bad_binds[i]) /* an empty prefix binding is allowed: SaveImageWebsocket workflows */
      CHECK_ERR(&c, "comfyui.bind.prefix", want);
    else
      CHECK_OK(&c);
  }
  /* object store prefixes: no dot segments (libcurl would squash them after signing) */
  const char *bad_prefixes[] = {"./", "x/./", "x/../", "/x/", "x//y/", "x", "x?/", "a%2e/"};
  for (size_t i = 0; i < sizeof(bad_prefixes) / sizeof(bad_prefixes[0]); i++) {
    c = d;
    snprintf(c.storage_backend, sizeof(c.storage_backend), "s3");
    snprintf(c.storage_bucket, sizeof(c.storage_bucket), "trips");
    snprintf(c.storage_region, sizeof(c.storage_region), "us-east-1");
    snprintf(c.storage_prefix, sizeof(c.storage_prefix), "%s", bad_prefixes[i]);
    CHECK_ERR(&c, "storage.prefix");
  }
  snprintf(c.storage_prefix, sizeof(c.storage_prefix), "trips/v1/");
  CHECK_OK(&c);
  snprintf(c.storage_bucket, sizeof(c.storage_bucket), "my.trips");
  CHECK_ERR(&c, "storage.bucket", "path");
  snprintf(c.storage_addressing, sizeof(c.storage_addressing), "path");
  CHECK_OK(&c);
  /* a key variable's name, never a key */
  c = d;
  snprintf(c.dashscope_key_env, sizeof(c.dashscope_key_env), "sk-0123456789abcdef");
  CHECK_ERR(&c, "dashscope.api_key_env", "name of an environment variable");
  c = d;
  snprintf(c.openai_key_env, sizeof(c.openai_key_env), "%s", "");
  CHECK_ERR(&c, "openai.api_key_env", "not a key");
  c = d;
  *c.llm_model = '\0';
  CHECK_ERR(&c, "llm.model", "empty");
  c = d;
  snprintf(c.comfyui_url, sizeof(c.comfyui_url), "http://gpu0:8188,http://gpu1:8188");
  CHECK_OK(&c);
  snprintf(c.comfyui_url, sizeof(c.comfyui_url), "http://gpu0:8188,,http://gpu1:8188");
  CHECK_ERR(&c, "comfyui.url", "comma-separated");
  c = d;
  snprintf(c.openai_url, sizeof(c.openai_url), "http://a/v1,http://b/v1");
  CHECK_ERR(&c, "openai.url", "one http");
  c = d;
  snprintf(c.bind.seed, sizeof(c.bind.seed), "31.noise_seed");
  CHECK_OK(&c);

  c = d;
  c.storage_root[0] = '\0';
  CHECK_ERR(&c, "storage.root", "empty");

  c = d;
  snprintf(c.http_listen, sizeof(c.http_listen), "127.0.0.1");
  CHECK_ERR(&c, "http.listen", "host:port", "127.0.0.1");
  snprintf(c.http_listen, sizeof(c.http_listen), "9464");
  CHECK_ERR(&c, "http.listen");
  c.http_listen[0] = '\0'; /* off */
  CHECK_OK(&c);
  snprintf(c.http_listen, sizeof(c.http_listen), "0.0.0.0:0"); /* any free port */
  CHECK_OK(&c);

  const char *bad_envs[] = {"Prod", "", "9x", "-dev", "prod_eu", "pr od"};
  for (size_t i = 0; i < sizeof(bad_envs) / sizeof(bad_envs[0]); i++) {
    c = d;
    snprintf(c.env, sizeof(c.env), "%s", bad_envs[i]);
    CHECK_ERR(&c, "env", "lowercase");
  }
  c = d;
  snprintf(c.env, sizeof(c.env), "prod-eu1");
  CHECK_OK(&c);

  c = d;
  snprintf(c.worker_name, sizeof(c.worker_name), "bad name!");
  CHECK_ERR(&c, "worker.name");
  snprintf(c.worker_name, sizeof(c.worker_name), "tripgen-worker-0.pod:1");
  CHECK_OK(&c);

  c = d;
  snprintf(c.queue.redis_url, sizeof(c.queue.redis_url), "http://cache:6379");
  CHECK_ERR(&c, "redis.url");
  snprintf(c.queue.redis_url, sizeof(c.queue.redis_url), "unix:///run/redis.sock?db=2");
  CHECK_OK(&c);

  /* the same checks run at the end of a load: from a file... */
  LOAD_ERR("{\"retry\": {\"backoff_base_ms\": 5000, \"backoff_max_ms\": 1000}}",
           "retry.backoff_base_ms");
  LOAD_ERR("{\"queue\": {\"lease_refresh_ms\": 300000}}", "queue.lease_refresh_ms");
  LOAD_ERR("{\"queue\": {\"visibility_timeout_ms\": 1000, \"lease_refresh_ms\": 1000}}",
           "queue.lease_refresh_ms");
  LOAD_ERR("{\"comfyui\": {\"url\": \"ws://comfy:8188\"}}", "comfyui.url");
  LOAD_ERR("{\"comfyui\": {\"bind\": {\"prompt\": \"6text\"}}}", "comfyui.bind.prompt",
           "\"6text\"");
  LOAD_ERR("{\"storage\": {\"root\": \"\"}}", "storage.root");
  LOAD_ERR("{\"http\": {\"listen\": \"localhost\"}}", "http.listen");
  LOAD_ERR("{\"env\": \"Prod\"}", "env", "\"Prod\"");
  LOAD_ERR("{\"redis\": {\"url\": \"redis://cache:0\"}}", "redis.url");
  /* ...and from the environment */
  ENV_ERR("TRIPGEN_ENV", "Prod", "env", "\"Prod\"", "lowercase");
  ENV_ERR("TRIPGEN_COMFYUI_BIND_PROMPT", "6text", "comfyui.bind.prompt", "\"6text\"");
  ENV_ERR("TRIPGEN_HTTP_LISTEN", "9464", "http.listen");
  ENV_ERR("TRIPGEN_RETRY_BACKOFF_BASE_MS", "400000", "retry.backoff_base_ms");
  /* a cross-key error caused by the variable on top of a valid file */
  setenv("TRIPGEN_QUEUE_LEASE_REFRESH_MS", "2000", 1);
  LOAD_ERR("{\"queue\": {\"visibility_timeout_ms\": 2000}}", "queue.lease_refresh_ms");
  clear_tripgen_env();
}

/* ---- broken files ---------------------------------------------------------- */

static void test_bad_files(void) {
  struct tg_worker_conf c;
  char err[512] = "", path[512];
  clear_tripgen_env();

  FILE_ERR("{\"env\": \"dev\",}", "invalid JSON");
  FILE_ERR("{\"env\": \"dev\"", "invalid JSON");
  FILE_ERR("", "invalid JSON");
  FILE_ERR("{\"env\": \"dev\"} trailing", "invalid JSON");
  FILE_ERR("{\"env\": \"a\", \"env\": \"b\"}", "duplicate");
  FILE_ERR("{\"env\": \"d\xff\"}", "invalid JSON");     /* not UTF-8 */
  FILE_ERR("[{\"env\": \"dev\"}]", "expected a JSON object");
  FILE_ERR("[]", "expected a JSON object");
  FILE_ERR("42", "config");
  FILE_ERR("\"dev\"", "config");
  FILE_ERR("null", "config");

  /* a missing file */
  snprintf(path, sizeof(path), "%s/no-such-config.json", tmpdir);
  tg_err_t rc = tg_worker_conf_load(&c, path, err, sizeof(err));
  CHECK(rc == TG_ERR_INVAL);
  CHECK_MSG(has(err, path) && has(err, strerror(ENOENT)), "missing file: %s", err);

  /*
   * A directory: the read error is reported, not "larger than 65535 bytes".
   */
  rc = tg_worker_conf_load(&c, tmpdir, err, sizeof(err));
  CHECK(rc == TG_ERR_INVAL);
  CHECK_MSG(has(err, tmpdir), "directory: %s", err);
  CHECK_MSG(!has(err, "larger than") && has(err, strerror(EISDIR)),
            "a directory is reported as \"%s\", want "
            "\"config %s: %s\" (fread error not checked)",
            err, tmpdir, strerror(EISDIR));

  /* size: 65535 bytes load, 65536 do not */
  static char big[70000];
  memset(big, ' ', sizeof(big));
  memcpy(big, "{\"env\": \"big\"}", 14);
  write_temp(big, 65535, path, sizeof(path));
  rc = tg_worker_conf_load(&c, path, err, sizeof(err));
  CHECK_MSG(rc == TG_OK, "65535-byte file: %s", err);
  if (rc == TG_OK)
    CHECK_STREQ(c.env, "big");
  unlink(path);
  write_temp(big, 65536, path, sizeof(path));
  rc = tg_worker_conf_load(&c, path, err, sizeof(err));
  CHECK(rc == TG_ERR_INVAL);
  CHECK_MSG(has(err, path) && has(err, "larger than"), "65536-byte file: %s", err);
  unlink(path);

  /* too deep: refused by the strict loader, naming the file */
  char deep[1024] = "";
  for (int i = 0; i < 100; i++)
    strcat(deep, "{\"a\":");
  strcat(deep, "1");
  for (int i = 0; i < 100; i++)
    strcat(deep, "}");
  FILE_ERR(deep, "deeper");

  /* a tiny error buffer is truncated, never overrun (ASan watches) */
  char tiny[8];
  memset(tiny, 'z', sizeof(tiny));
  write_temp("{\"diffusion\": {\"slots\": 0}}", 27, path, sizeof(path));
  rc = tg_worker_conf_load(&c, path, tiny, sizeof(tiny));
  unlink(path);
  CHECK(rc == TG_ERR_INVAL);
  CHECK(memchr(tiny, '\0', sizeof(tiny)) != NULL);
  CHECK(strncmp(tiny, "config", 6) == 0);
}

int main(void) {
  clear_tripgen_env();
  if (!tripgen_env_empty()) {
    fprintf(stderr, "test_config: cannot clear TRIPGEN_* variables\n");
    return 1;
  }
  snprintf(tmpdir, sizeof(tmpdir), "%s/tg-config-XXXXXX",
           getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(tmpdir)) {
    fprintf(stderr, "mkdtemp %s: %s\n", tmpdir, strerror(errno));
    return 1;
  }
  RUN(test_defaults);
  RUN(test_file_nested);
  RUN(test_file_flat_dotted);
  RUN(test_file_unknown_key);
  RUN(test_file_wrong_type);
  RUN(test_file_range);
  RUN(test_file_choices);
  RUN(test_kafka_conf);
  RUN(test_file_too_long);
  RUN(test_env_bool);
  RUN(test_env_values);
  RUN(test_env_beats_file);
  RUN(test_redis_password);
  RUN(test_print);
  RUN(test_help);
  RUN(test_cross_keys);
  RUN(test_bad_files);
  if (rmdir(tmpdir) != 0)
    fprintf(stderr, "rmdir %s: %s\n", tmpdir, strerror(errno));
  return check_done("test_config");
}
