/* node/mod_pubsub.c - gossipsub in `lp2p-node listen` (lp2p/pubsub.h).
 *
 * Flags: --subscribe TOPIC (repeatable): joined at start; --pubsub: gossipsub on from the start
 * without a topic. Without either, the behaviour is added at the first subscribe or publish
 * command (a node that never uses pubsub opens no /meshsub streams).
 * Commands: subscribe TOPIC, unsubscribe TOPIC, publish TOPIC TEXT..., mesh TOPIC,
 *           topic-peers TOPIC.
 * Events: gossip-message {topic, from, id, data} for every message delivered (id in hex,
 *         data as text); subscribed {topic, ok}, unsubscribed {topic, ok},
 *         published {topic, ok, id, peers} (peers: how many it was sent to),
 *         mesh {topic, peers: [...]}, topic-peers {topic, peers: [...]}. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp2p/pubsub.h"
#include "module.h"

#define MAX_START_TOPICS 32

typedef struct ps_state {
  lp2p_pubsub *ps;
  node *n;
  char *topics[MAX_START_TOPICS];
  size_t n_topics;
  int enabled; /* --pubsub */
} ps_state;

static const cli_opt opts[] = {
    {"subscribe", "TOPIC", "gossipsub: join TOPIC at start (repeatable)"},
    {"pubsub", NULL, "gossipsub on from the start (else at the first subscribe/publish)"},
};

static int opt(node *n, void *st_, size_t idx, const char *val) {
  ps_state *st = st_;
  (void)n;
  if (idx == 1) st->enabled = 1;
  if (idx != 0) return 0;
  if (!val || !*val || strlen(val) > LP2P_PUBSUB_MAX_TOPIC) return cli_usage_error("--subscribe: bad topic");
  if (st->n_topics == MAX_START_TOPICS) return cli_usage_error("--subscribe: at most %d topics", MAX_START_TOPICS);
  if (!(st->topics[st->n_topics] = strdup(val))) return cli_error("out of memory");
  st->n_topics++;
  return 0;
}

static void hex(const uint8_t *p, size_t n, char *out) {
  static const char d[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) out[2 * i] = d[p[i] >> 4], out[2 * i + 1] = d[p[i] & 15];
  out[2 * n] = 0;
}

static void on_message(lp2p_pubsub *ps, const lp2p_pubsub_message *m, void *ud) {
  ps_state *st = ud;
  (void)ps;
  char from[LP2P_PEER_ID_MAX_TEXT] = "", id[2 * LP2P_PUBSUB_MAX_ID + 1];
  lp2p_peer_id_to_string(m->from, from, sizeof from);
  hex(m->id, m->id_len, id);
  char *data = malloc(m->data_len + 1);
  if (!data) return;
  if (m->data_len) memcpy(data, m->data, m->data_len);
  data[m->data_len] = 0;
  node_text(st->n, "gossip %s from %s: %s", m->topic, from, data);
  if (node_json_wanted(st->n)) {
    cli_json j;
    cli_json_begin(&j);
    cli_json_str(&j, "event", "gossip-message");
    cli_json_str(&j, "topic", m->topic);
    cli_json_str(&j, "from", from);
    cli_json_str(&j, "id", id);
    cli_json_str(&j, "data", data);
    node_emit(st->n, &j, 0);
  }
  free(data);
}

/* The behaviour, added on first use. */
static int ensure(ps_state *st) {
  if (st->ps) return 0;
  return lp2p_pubsub_add(node_swarm(st->n), NULL, &st->ps);
}

static int setup(node *n, void *st_) {
  ps_state *st = st_;
  st->n = n;
  if (!st->enabled && !st->n_topics) return 0;
  int rv = ensure(st);
  if (rv < 0) return cli_error("gossipsub: %s", lp2p_strerror(rv));
  for (size_t i = 0; i < st->n_topics; i++)
    if ((rv = lp2p_pubsub_subscribe(st->ps, st->topics[i], on_message, st)) < 0)
      return cli_error("gossipsub: subscribe %s: %s", st->topics[i], lp2p_strerror(rv));
  return 0;
}

static void result(ps_state *st, uint64_t origin, const char *event, const char *topic, int rv) {
  node_text(st->n, "%s %s: %s", event, topic, rv < 0 ? lp2p_strerror(rv) : "ok");
  if (!node_json_wanted(st->n)) return;
  cli_json j;
  cli_json_begin(&j);
  cli_json_str(&j, "event", event);
  cli_json_str(&j, "topic", topic);
  cli_json_bool(&j, "ok", rv >= 0);
  if (rv < 0) cli_json_str(&j, "error", lp2p_strerror(rv));
  node_emit(st->n, &j, origin);
}

static void peer_list(ps_state *st, uint64_t origin, const char *event, const char *topic, int mesh) {
  lp2p_peer_id ids[128];
  size_t n = !st->ps ? 0 : mesh ? lp2p_pubsub_mesh_peers(st->ps, topic, ids, 128) : lp2p_pubsub_topic_peers(st->ps, topic, ids, 128);
  if (n > 128) n = 128;
  char(*txt)[LP2P_PEER_ID_MAX_TEXT] = calloc(n ? n : 1, sizeof *txt);
  const char **v = calloc(n ? n : 1, sizeof *v);
  if (!txt || !v) {
    free(txt), free(v);
    return;
  }
  for (size_t i = 0; i < n; i++) lp2p_peer_id_to_string(&ids[i], txt[i], sizeof txt[i]), v[i] = txt[i];
  node_text(st->n, "%s %s: %zu peer(s)", event, topic, n);
  for (size_t i = 0; i < n; i++) node_text(st->n, "  %s", v[i]);
  if (node_json_wanted(st->n)) {
    cli_json j;
    cli_json_begin(&j);
    cli_json_str(&j, "event", event);
    cli_json_str(&j, "topic", topic);
    cli_json_str_array(&j, "peers", v, n);
    node_emit(st->n, &j, origin);
  }
  free(txt), free(v);
}

/* First word of args into *topic (NUL-terminated in place); *rest gets the remainder. */
static int split(char *args, char **topic, char **rest) {
  while (*args == ' ' || *args == '\t') args++;
  if (!*args) return -1;
  *topic = args;
  while (*args && *args != ' ' && *args != '\t') args++;
  if (*args) *args++ = 0;
  while (*args == ' ' || *args == '\t') args++;
  if (rest) *rest = args;
  return 0;
}

static int command(node *n, void *st_, uint64_t origin, const char *verb, char *args) {
  ps_state *st = st_;
  char *topic = NULL, *rest = NULL;
  int rv0;
  int is_sub = !strcmp(verb, "subscribe"), is_unsub = !strcmp(verb, "unsubscribe");
  int is_pub = !strcmp(verb, "publish"), is_mesh = !strcmp(verb, "mesh"), is_tp = !strcmp(verb, "topic-peers");
  if (!is_sub && !is_unsub && !is_pub && !is_mesh && !is_tp) return 0;
  if (split(args, &topic, &rest) < 0) {
    node_command_error(n, origin, verb, is_pub ? "usage: publish TOPIC TEXT" : "usage: <command> TOPIC");
    return 1;
  }
  if ((is_sub || is_pub) && (rv0 = ensure(st)) < 0) {
    result(st, origin, is_sub ? "subscribed" : "published", topic, rv0);
  } else if (is_sub) {
    result(st, origin, "subscribed", topic, lp2p_pubsub_subscribe(st->ps, topic, on_message, st));
  } else if (is_unsub) {
    result(st, origin, "unsubscribed", topic, st->ps ? lp2p_pubsub_unsubscribe(st->ps, topic) : 0);
  } else if (is_pub) {
    uint8_t id[LP2P_PUBSUB_MAX_ID];
    size_t peers = 0;
    int rv = lp2p_pubsub_publish(st->ps, topic, (const uint8_t *)rest, strlen(rest), id, sizeof id, &peers);
    char idh[2 * LP2P_PUBSUB_MAX_ID + 1] = "";
    if (rv > 0) hex(id, (size_t)rv, idh);
    node_text(n, "published %s: %s", topic, rv < 0 ? lp2p_strerror(rv) : idh);
    if (node_json_wanted(n)) {
      cli_json j;
      cli_json_begin(&j);
      cli_json_str(&j, "event", "published");
      cli_json_str(&j, "topic", topic);
      cli_json_bool(&j, "ok", rv > 0);
      if (rv > 0) {
        cli_json_str(&j, "id", idh);
        cli_json_int(&j, "peers", (long long)peers);
      } else {
        cli_json_str(&j, "error", lp2p_strerror(rv));
      }
      node_emit(n, &j, origin);
    }
  } else {
    peer_list(st, origin, is_mesh ? "mesh" : "topic-peers", topic, is_mesh);
  }
  return 1;
}

static void teardown(node *n, void *st_) {
  ps_state *st = st_;
  (void)n;
  for (size_t i = 0; i < st->n_topics; i++) free(st->topics[i]);
}

const node_module node_mod_pubsub = {
    .name = "pubsub",
    .opts = opts,
    .n_opts = sizeof opts / sizeof *opts,
    .opt = opt,
    .usage = "gossipsub (/meshsub/1.2.0): --subscribe TOPIC joins at start (--pubsub: on without a topic;\n"
             "  else it starts with the first subscribe/publish).\n"
             "  commands: subscribe TOPIC, unsubscribe TOPIC, publish TOPIC TEXT, mesh TOPIC, topic-peers TOPIC\n"
             "  events: gossip-message {topic, from, id, data}, published {topic, ok, id, peers},\n"
             "          subscribed/unsubscribed {topic, ok}, mesh/topic-peers {topic, peers}\n",
    .state_size = sizeof(ps_state),
    .setup = setup,
    .command = command,
    .teardown = teardown,
    .commands = "subscribe TOPIC, unsubscribe TOPIC, publish TOPIC TEXT, mesh TOPIC, topic-peers TOPIC",
};
