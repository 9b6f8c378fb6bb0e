/* transport/dns.c - multiaddr resolver on c-ares, driven by libuv:
 *   /dns4/<host>/...   A records      -> /ip4/<a>/...
 *   /dns6/<host>/...   AAAA records   -> /ip6/<a>/...
 *   /dns/<host>/...    both
 *   /dnsaddr/<host>[/p2p/<id>] TXT "dnsaddr=<multiaddr>" at _dnsaddr.<host>
 *                      (entries filtered by the /p2p id when one is given;
 *                      nested /dnsaddr or /dns* entries are resolved again by
 *                      the dial pipeline, which bounds the recursion).
 * "localhost" and "*.localhost" (dns, dns4, dns6) are loopback without asking
 * anyone (RFC 6761). Every other request owns a c-ares channel (system resolver configuration, hosts
 * file first) whose sockets are watched with uv_poll handles and whose
 * timeouts run on a uv_timer. Results are limited to LP2P__DNS_MAX_RESULTS. */
#include <ares.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/mem.h"
#include "transport/transport_int.h"

#define LP2P__DNS_MAX_RESULTS 32
#define LP2P__DNS_MAX_POLLS 16

char *lp2p__dns_servers_override; /* tests: "127.0.0.1:5353" (c-ares csv syntax) */

typedef struct dns_poll {
  uv_poll_t h;
  struct lp2p__resolve_req *req;
  ares_socket_t fd;
  int in_use;
} dns_poll;

struct lp2p__resolve_req {
  lp2p_mem mem;
  uv_loop_t *loop;
  ares_channel ch;
  int ch_open;
  uv_timer_t timer;
  dns_poll polls[LP2P__DNS_MAX_POLLS];
  int open_handles;
  lp2p__resolve_cb cb;
  void *ud;
  uint32_t code;            /* LP2P_MA_DNS4 ... */
  lp2p_multiaddr *rest;     /* components after the dns one (NULL if none) */
  lp2p_multiaddr *want_p2p; /* dnsaddr: required /p2p suffix, or NULL */
  lp2p_multiaddr *results[LP2P__DNS_MAX_RESULTS];
  size_t n_results;
  int err;
  int done, delivered, in_process;
};

static uv_once_t g_once = UV_ONCE_INIT;
static int g_init_rv;
static void lib_init(void) { g_init_rv = ares_library_init(ARES_LIB_INIT_ALL); }

static int is_dns_code(uint32_t c) {
  return c == LP2P_MA_DNS || c == LP2P_MA_DNS4 || c == LP2P_MA_DNS6 || c == LP2P_MA_DNSADDR;
}

static int dns_handles(const lp2p_multiaddr *ma) {
  uint32_t code;
  const uint8_t *v;
  size_t vl;
  return lp2p_multiaddr_count(ma) >= 1 && lp2p_multiaddr_component(ma, 0, &code, &v, &vl) == 0 &&
         is_dns_code(code);
}

/* ------------------------------------------------------------------------- */
/* handle bookkeeping */

static void req_free(struct lp2p__resolve_req *r) {
  for (size_t i = 0; i < r->n_results; i++) lp2p_multiaddr_free(r->results[i]);
  lp2p_multiaddr_free(r->rest);
  lp2p_multiaddr_free(r->want_p2p);
  lp2p_mem mem = r->mem;
  lp2p__free(&mem, r);
}

static void req_handle_gone(struct lp2p__resolve_req *r) {
  if (--r->open_handles == 0 && r->delivered) req_free(r);
}
static void timer_closed(uv_handle_t *h) { req_handle_gone(h->data); }
static void poll_close_cb(uv_handle_t *h) { req_handle_gone(((dns_poll *)h->data)->req); }

static void shutdown_req(struct lp2p__resolve_req *r) {
  if (r->ch_open) {
    r->ch_open = 0;
    ares_destroy(r->ch); /* pending callbacks run with ARES_EDESTRUCTION; sockets reported closed */
  }
  for (int i = 0; i < LP2P__DNS_MAX_POLLS; i++) {
    if (r->polls[i].in_use) {
      r->polls[i].in_use = 0;
      uv_poll_stop(&r->polls[i].h);
      uv_close((uv_handle_t *)&r->polls[i].h, poll_close_cb);
    }
  }
  if (!uv_is_closing((uv_handle_t *)&r->timer)) uv_close((uv_handle_t *)&r->timer, timer_closed);
}

static void deliver(struct lp2p__resolve_req *r) {
  if (r->delivered) return;
  r->delivered = 1;
  int err = r->err;
  if (!err && !r->n_results) err = LP2P_ERR_DNS;
  r->cb(r->ud, err, r->results, err ? 0 : r->n_results);
  shutdown_req(r);
  if (r->open_handles == 0) req_free(r);
}

/* ------------------------------------------------------------------------- */
/* c-ares <-> libuv */

static void arm_timer(struct lp2p__resolve_req *r);

static void after_process(struct lp2p__resolve_req *r) {
  if (r->done)
    deliver(r);
  else
    arm_timer(r);
}

static void timer_cb(uv_timer_t *t) {
  struct lp2p__resolve_req *r = t->data;
  if (r->delivered) return;
  if (r->ch_open) { /* else: answered without c-ares (localhost) */
    r->in_process = 1;
    ares_process_fd(r->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    r->in_process = 0;
  }
  after_process(r);
}

static void arm_timer(struct lp2p__resolve_req *r) {
  if (!r->ch_open) return;
  struct timeval tv, *tp = ares_timeout(r->ch, NULL, &tv);
  if (!tp) {
    uv_timer_stop(&r->timer);
    return;
  }
  uint64_t ms = (uint64_t)tp->tv_sec * 1000 + (uint64_t)(tp->tv_usec + 999) / 1000;
  uv_timer_start(&r->timer, timer_cb, ms, 0);
}

static void poll_cb(uv_poll_t *h, int status, int events) {
  dns_poll *p = h->data;
  struct lp2p__resolve_req *r = p->req;
  if (!r->ch_open) return;
  ares_socket_t rd = ARES_SOCKET_BAD, wr = ARES_SOCKET_BAD;
  if (status < 0 || (events & UV_READABLE)) rd = p->fd;
  if (status < 0 || (events & UV_WRITABLE)) wr = p->fd;
  r->in_process = 1;
  ares_process_fd(r->ch, rd, wr);
  r->in_process = 0;
  after_process(r);
}

static void sock_state_cb(void *data, ares_socket_t fd, int readable, int writable) {
  struct lp2p__resolve_req *r = data;
  dns_poll *p = NULL, *free_slot = NULL;
  for (int i = 0; i < LP2P__DNS_MAX_POLLS; i++) {
    if (r->polls[i].in_use && r->polls[i].fd == fd) p = &r->polls[i];
    if (!r->polls[i].in_use && !free_slot && !uv_is_closing((uv_handle_t *)&r->polls[i].h))
      free_slot = &r->polls[i];
  }
  if (!readable && !writable) {
    if (p) {
      p->in_use = 0;
      uv_poll_stop(&p->h);
      uv_close((uv_handle_t *)&p->h, poll_close_cb);
    }
    return;
  }
  if (!p) {
    if (!free_slot) return; /* too many sockets: c-ares times the query out */
    p = free_slot;
    memset(&p->h, 0, sizeof p->h);
    if (uv_poll_init_socket(r->loop, &p->h, fd) != 0) return;
    p->h.data = p;
    p->req = r;
    p->fd = fd;
    p->in_use = 1;
    r->open_handles++;
  }
  uv_poll_start(&p->h, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0), poll_cb);
}

/* ------------------------------------------------------------------------- */
/* answers */

static void add_result(struct lp2p__resolve_req *r, lp2p_multiaddr *ma) {
  if (!ma) return;
  for (size_t i = 0; i < r->n_results; i++) {
    if (lp2p_multiaddr_equal(r->results[i], ma)) {
      lp2p_multiaddr_free(ma);
      return;
    }
  }
  if (r->n_results == LP2P__DNS_MAX_RESULTS) {
    lp2p_multiaddr_free(ma);
    return;
  }
  r->results[r->n_results++] = ma;
}

/* /ip4|ip6/<addr> ++ rest */
static lp2p_multiaddr *ip_with_rest(const struct sockaddr *sa, const lp2p_multiaddr *rest) {
  char ip[64], text[96];
  if (sa->sa_family == AF_INET) {
    if (uv_ip4_name((const struct sockaddr_in *)sa, ip, sizeof ip)) return NULL;
    snprintf(text, sizeof text, "/ip4/%s", ip);
  } else if (sa->sa_family == AF_INET6) {
    if (uv_ip6_name((const struct sockaddr_in6 *)sa, ip, sizeof ip)) return NULL;
    snprintf(text, sizeof text, "/ip6/%s", ip);
  } else {
    return NULL;
  }
  lp2p_multiaddr *base, *out = NULL;
  if (lp2p_multiaddr_parse(&base, text, NULL, 0) < 0) return NULL;
  if (!rest)
    out = base;
  else {
    lp2p_multiaddr_concat(&out, base, rest);
    lp2p_multiaddr_free(base);
  }
  return out;
}

static void addrinfo_cb(void *arg, int status, int timeouts, struct ares_addrinfo *res) {
  struct lp2p__resolve_req *r = arg;
  (void)timeouts;
  if (r->done || status == ARES_EDESTRUCTION) {
    if (res) ares_freeaddrinfo(res);
    return;
  }
  r->done = 1;
  if (status != ARES_SUCCESS || !res) {
    r->err = status == ARES_ENOMEM ? LP2P_ERR_NOMEM : LP2P_ERR_DNS;
  } else {
    for (struct ares_addrinfo_node *n = res->nodes; n; n = n->ai_next) {
      if (r->code == LP2P_MA_DNS4 && n->ai_family != AF_INET) continue;
      if (r->code == LP2P_MA_DNS6 && n->ai_family != AF_INET6) continue;
      add_result(r, ip_with_rest(n->ai_addr, r->rest));
    }
  }
  if (res) ares_freeaddrinfo(res);
  if (!r->in_process) deliver(r);
}

/* Does ma end with the /p2p component want (bytes compare)? */
static int ends_with(const lp2p_multiaddr *ma, const lp2p_multiaddr *want) {
  size_t la, lw;
  const uint8_t *a = lp2p_multiaddr_bytes(ma, &la), *w = lp2p_multiaddr_bytes(want, &lw);
  return la >= lw && !memcmp(a + la - lw, w, lw);
}

static void txt_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen) {
  struct lp2p__resolve_req *r = arg;
  (void)timeouts;
  if (r->done || status == ARES_EDESTRUCTION) return;
  r->done = 1;
  struct ares_txt_ext *txt = NULL;
  if (status != ARES_SUCCESS || ares_parse_txt_reply_ext(abuf, alen, &txt) != ARES_SUCCESS) {
    r->err = status == ARES_ENOMEM ? LP2P_ERR_NOMEM : LP2P_ERR_DNS;
    if (!r->in_process) deliver(r);
    return;
  }
  /* join the character-strings of each record, keep "dnsaddr=<multiaddr>" */
  char rec[1100];
  size_t rl = 0;
  int have = 0;
  for (struct ares_txt_ext *t = txt;; t = t->next) {
    if (!t || t->record_start) {
      if (have && rl > 8 && !memcmp(rec, "dnsaddr=", 8)) {
        rec[rl] = 0;
        lp2p_multiaddr *ma;
        if (lp2p_multiaddr_parse(&ma, rec + 8, NULL, 0) == 0) {
          if (!r->want_p2p || ends_with(ma, r->want_p2p))
            add_result(r, ma);
          else
            lp2p_multiaddr_free(ma);
        }
      }
      rl = 0;
      have = 0;
      if (!t) break;
    }
    have = 1;
    if (rl + t->length < sizeof rec - 1) {
      memcpy(rec + rl, t->txt, t->length);
      rl += t->length;
    } else {
      have = 0; /* oversized record: ignored */
    }
  }
  ares_free_data(txt);
  if (!r->in_process) deliver(r);
}

/* RFC 6761 section 6.3: "localhost" and names ending in ".localhost" are
 * loopback, answered here without a hosts file or a DNS server (as the go and
 * rust system resolvers do). Case-insensitive; one trailing dot allowed. */
static int is_localhost(const uint8_t *v, size_t vl) {
  if (vl && v[vl - 1] == '.') vl--;
  static const char lh[] = "localhost";
  const size_t ll = sizeof lh - 1;
  if (vl < ll || strncasecmp((const char *)v + vl - ll, lh, ll)) return 0;
  if (vl == ll) return 1;
  return vl > ll + 1 && v[vl - ll - 1] == '.' && v[0] != '.';
}

static void add_loopback(struct lp2p__resolve_req *r) {
  if (r->code != LP2P_MA_DNS6) {
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    add_result(r, ip_with_rest((const struct sockaddr *)&sa, r->rest));
  }
  if (r->code != LP2P_MA_DNS4) {
    struct sockaddr_in6 sa6;
    uv_ip6_addr("::1", 0, &sa6);
    add_result(r, ip_with_rest((const struct sockaddr *)&sa6, r->rest));
  }
  if (!r->n_results) r->err = LP2P_ERR_NOMEM;
}

/* ------------------------------------------------------------------------- */

static int dns_resolve(uv_loop_t *loop, const lp2p_mem *mem, const lp2p_multiaddr *ma, lp2p__resolve_cb cb,
                       void *ud, lp2p__resolve_req **out) {
  uint32_t code;
  const uint8_t *v;
  size_t vl, n = lp2p_multiaddr_count(ma);
  if (!n || lp2p_multiaddr_component(ma, 0, &code, &v, &vl) < 0 || !is_dns_code(code))
    return LP2P_ERR_UNSUPPORTED;
  if (!vl || vl > 253 || memchr(v, 0, vl)) return LP2P_ERR_MULTIADDR;
  uv_once(&g_once, lib_init);
  if (g_init_rv != ARES_SUCCESS) return LP2P_ERR_DNS;
  mem = lp2p__mem_or_default(mem);
  struct lp2p__resolve_req *r = lp2p__calloc(mem, 1, sizeof *r);
  if (!r) return LP2P_ERR_NOMEM;
  r->mem = *mem;
  r->loop = loop;
  r->cb = cb;
  r->ud = ud;
  r->code = code;
  /* the components after the dns one */
  lp2p_multiaddr *head = NULL;
  int rv = lp2p_multiaddr_prefix(&head, ma, 1);
  if (!rv) {
    size_t hl, ml;
    lp2p_multiaddr_bytes(head, &hl);
    const uint8_t *mb = lp2p_multiaddr_bytes(ma, &ml);
    if (ml > hl) rv = lp2p_multiaddr_from_bytes(&r->rest, mb + hl, ml - hl, NULL, 0);
    lp2p_multiaddr_free(head);
  }
  if (!rv && code == LP2P_MA_DNSADDR && r->rest) {
    uint32_t c2;
    const uint8_t *v2;
    size_t l2;
    size_t rc = lp2p_multiaddr_count(r->rest);
    if (lp2p_multiaddr_component(r->rest, rc - 1, &c2, &v2, &l2) == 0 && c2 == LP2P_MA_P2P) {
      size_t rl;
      const uint8_t *rb = lp2p_multiaddr_bytes(r->rest, &rl);
      lp2p_multiaddr *pre;
      if ((rv = lp2p_multiaddr_prefix(&pre, r->rest, rc - 1)) == 0) {
        size_t pl;
        lp2p_multiaddr_bytes(pre, &pl);
        rv = lp2p_multiaddr_from_bytes(&r->want_p2p, rb + pl, rl - pl, NULL, 0);
        lp2p_multiaddr_free(pre);
      }
    }
  }
  if (rv < 0) {
    req_free(r);
    return rv;
  }
  if (code != LP2P_MA_DNSADDR && is_localhost(v, vl)) {
    add_loopback(r);
    r->done = 1;
    uv_timer_init(loop, &r->timer);
    r->timer.data = r;
    r->open_handles = 1;
    *out = r;
    uv_timer_start(&r->timer, timer_cb, 0, 0); /* delivered on the next loop turn */
    return 0;
  }
  struct ares_options opts;
  memset(&opts, 0, sizeof opts);
  opts.sock_state_cb = sock_state_cb;
  opts.sock_state_cb_data = r;
  opts.timeout = 2000; /* ms per try */
  opts.tries = 2;
  char lookups[] = "fb";
  opts.lookups = lookups;
  if (ares_init_options(&r->ch, &opts,
                        ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS) !=
      ARES_SUCCESS) {
    req_free(r);
    return LP2P_ERR_DNS;
  }
  r->ch_open = 1;
  if (lp2p__dns_servers_override) ares_set_servers_ports_csv(r->ch, lp2p__dns_servers_override);
  uv_timer_init(loop, &r->timer);
  r->timer.data = r;
  r->open_handles = 1;
  char host[260];
  memcpy(host, v, vl);
  host[vl] = 0;
  r->in_process = 1;
  if (code == LP2P_MA_DNSADDR) {
    char q[270];
    snprintf(q, sizeof q, "_dnsaddr.%s", host);
    ares_query(r->ch, q, 1 /* IN */, 16 /* TXT */, txt_cb, r);
  } else {
    struct ares_addrinfo_hints hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = code == LP2P_MA_DNS4 ? AF_INET : code == LP2P_MA_DNS6 ? AF_INET6 : AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    ares_getaddrinfo(r->ch, host, NULL, &hints, addrinfo_cb, r);
  }
  r->in_process = 0;
  *out = r;
  /* answered synchronously (hosts file, cache, immediate error): deliver on
   * the next loop turn so that the caller never sees a nested callback */
  if (r->done)
    uv_timer_start(&r->timer, timer_cb, 0, 0);
  else
    arm_timer(r);
  return 0;
}

static void dns_cancel(lp2p__resolve_req *r) {
  if (r->delivered) return;
  r->done = 1;
  r->err = LP2P_ERR_CANCELED;
  deliver(r);
}

const lp2p__resolver lp2p__dns_resolver = {
    .name = "dns",
    .handles = dns_handles,
    .resolve = dns_resolve,
    .cancel = dns_cancel,
};

const lp2p__resolver *const lp2p__resolvers[] = {&lp2p__dns_resolver, NULL};

const lp2p__resolver *lp2p__resolver_for(const lp2p_multiaddr *ma) {
  for (size_t i = 0; lp2p__resolvers[i]; i++)
    if (lp2p__resolvers[i]->handles(ma)) return lp2p__resolvers[i];
  return NULL;
}
