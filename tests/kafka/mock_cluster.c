/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mock_cluster.c - test equipment: librdkafka's built-in mock cluster
 * (it speaks the real Kafka protocol) hosted in its own process, so that
 * killing a worker does not kill the cluster. Prints "bootstraps LIST"
 * first, then obeys one command per line on stdin, answering "ok" or
 * "error ...":
 *
 *   topic NAME PARTITIONS          create a topic
 *   down BROKER_ID / up BROKER_ID  take a broker down or bring it back
 *   errors API_KEY CODE[,CODE...]  the next requests of that API fail with
 *                                  these codes, in order (Produce = 0)
 *   coordinator group KEY BROKER   move a group's coordinator
 *   leader TOPIC PARTITION BROKER  move a partition's leader
 *   quit                           (so does end of input)
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  int brokers = argc > 1 ? atoi(argv[1]) : 3;
  char errstr[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  if (!rk) {
    fprintf(stderr, "mock_cluster: %s\n", errstr);
    return 1;
  }
  rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
  if (!mc) {
    fprintf(stderr, "mock_cluster: cannot create the cluster\n");
    return 1;
  }
  printf("bootstraps %s\n", rd_kafka_mock_cluster_bootstraps(mc));
  fflush(stdout);
  char line[1024];
  while (fgets(line, sizeof(line), stdin)) {
    char a[256] = "", b[256] = "", c[256] = "", d[256] = "";
    int n = sscanf(line, "%255s %255s %255s %255s", a, b, c, d);
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (n < 1)
      continue;
    if (strcmp(a, "quit") == 0)
      break;
    if (strcmp(a, "topic") == 0 && n == 3) {
      err = rd_kafka_mock_topic_create(mc, b, atoi(c), brokers < 3 ? brokers : 3);
    } else if ((strcmp(a, "down") == 0 || strcmp(a, "up") == 0) && n == 2) {
      err = strcmp(a, "down") == 0 ? rd_kafka_mock_broker_set_down(mc, atoi(b))
                                   : rd_kafka_mock_broker_set_up(mc, atoi(b));
    } else if (strcmp(a, "errors") == 0 && n == 3) {
      rd_kafka_resp_err_t codes[64];
      size_t k = 0;
      for (char *tok = strtok(c, ","); tok && k < 64; tok = strtok(NULL, ","))
        codes[k++] = (rd_kafka_resp_err_t)atoi(tok);
      rd_kafka_mock_push_request_errors_array(mc, (int16_t)atoi(b), k, codes);
    } else if (strcmp(a, "coordinator") == 0 && n == 4) {
      err = rd_kafka_mock_coordinator_set(mc, b, c, atoi(d));
    } else if (strcmp(a, "leader") == 0 && n == 4) {
      err = rd_kafka_mock_partition_set_leader(mc, b, atoi(c), atoi(d));
    } else {
      printf("error unknown command\n");
      fflush(stdout);
      continue;
    }
    if (err)
      printf("error %s\n", rd_kafka_err2str(err));
    else
      printf("ok\n");
    fflush(stdout);
  }
  rd_kafka_mock_cluster_destroy(mc);
  rd_kafka_destroy(rk);
  return 0;
}
