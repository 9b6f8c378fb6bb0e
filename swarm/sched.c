/* swarm/sched.c - the swarm's one timer scheduler and its clock.
 *
 * Every swarm deadline (a connection's dial/handshake deadline, keep-alive, stream negotiation
 * and queued-stream timeouts, idleness, the close grace period, and every lp2p_timer) is an
 * lp2p__sched_entry in one binary min-heap ordered by (due, insertion order). In real time a single
 * uv_timer is armed for the earliest entry; with cfg.manual_clock the clock only moves in
 * lp2p_swarm_advance(), which runs the due entries in deadline order.
 *
 * Users reserve a heap slot when they are created (lp2p__sched_reserve) so that scheduling itself
 * never allocates and never fails. */
#include <string.h>

#include "swarm/swarm_int.h"

#define MANUAL_EPOCH 1000000 /* the manual clock's start: non-zero (0 means "none" for deadlines) */

lp2p_tstamp lp2p__swarm_now(const lp2p_swarm *sw) {
  return sw->manual ? sw->manual_now : (lp2p_tstamp)uv_now(sw->loop);
}
lp2p_tstamp lp2p_swarm_now(const lp2p_swarm *sw) { return lp2p__swarm_now(sw); }

static int before(const lp2p__sched_entry *a, const lp2p__sched_entry *b) {
  return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void place(lp2p_swarm *sw, size_t i, lp2p__sched_entry *e) {
  sw->heap[i] = e;
  e->slot = i + 1;
}

static void sift_up(lp2p_swarm *sw, size_t i) {
  lp2p__sched_entry *e = sw->heap[i];
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!before(e, sw->heap[p])) break;
    place(sw, i, sw->heap[p]);
    i = p;
  }
  place(sw, i, e);
}

static void sift_down(lp2p_swarm *sw, size_t i) {
  lp2p__sched_entry *e = sw->heap[i];
  for (;;) {
    size_t l = 2 * i + 1, m = i;
    const lp2p__sched_entry *best = e;
    if (l < sw->n_heap && before(sw->heap[l], best)) m = l, best = sw->heap[l];
    if (l + 1 < sw->n_heap && before(sw->heap[l + 1], best)) m = l + 1;
    if (m == i) break;
    place(sw, i, sw->heap[m]);
    i = m;
  }
  place(sw, i, e);
}

static void real_timer_cb(uv_timer_t *h);

/* Real time: the uv_timer follows the earliest entry. */
static void rearm(lp2p_swarm *sw) {
  if (!sw->sched_open) return;
  if (sw->sched_close_cb && !sw->n_heap) { /* the swarm is freed: close once the last grace period ended */
    sw->sched_open = 0;
    uv_close((uv_handle_t *)&sw->sched_timer, sw->sched_close_cb);
    return;
  }
  if (sw->manual) return;
  if (!sw->n_heap) {
    if (sw->sched_armed) uv_timer_stop(&sw->sched_timer);
    sw->sched_armed = 0;
    return;
  }
  lp2p_tstamp due = sw->heap[0]->due;
  if (sw->sched_armed && sw->sched_armed_due == due) return;
  lp2p_tstamp now = lp2p__swarm_now(sw);
  uv_timer_start(&sw->sched_timer, real_timer_cb, due > now ? due - now : 0, 0);
  sw->sched_armed = 1;
  sw->sched_armed_due = due;
}

int lp2p__sched_reserve(lp2p_swarm *sw) {
  if (sw->n_reserved == sw->cap_heap) {
    size_t cap = sw->cap_heap ? sw->cap_heap * 2 : 16;
    lp2p__sched_entry **h = lp2p__realloc(&sw->mem, sw->heap, cap * sizeof *h);
    if (!h) return LP2P_ERR_NOMEM;
    sw->heap = h;
    sw->cap_heap = cap;
  }
  sw->n_reserved++;
  return 0;
}

void lp2p__sched_unreserve(lp2p_swarm *sw, lp2p__sched_entry *e) {
  lp2p__sched_cancel(sw, e);
  sw->n_reserved--;
}

void lp2p__sched_set(lp2p_swarm *sw, lp2p__sched_entry *e, lp2p_tstamp due) {
  e->due = due;
  e->seq = ++sw->sched_seq;
  if (!e->slot) {
    place(sw, sw->n_heap++, e); /* a slot was reserved */
    sift_up(sw, sw->n_heap - 1);
  } else {
    size_t i = e->slot - 1;
    sift_up(sw, i);
    sift_down(sw, e->slot - 1);
  }
  rearm(sw);
}

void lp2p__sched_cancel(lp2p_swarm *sw, lp2p__sched_entry *e) {
  if (!e->slot) return;
  size_t i = e->slot - 1;
  e->slot = 0;
  lp2p__sched_entry *last = sw->heap[--sw->n_heap];
  if (i < sw->n_heap) {
    place(sw, i, last);
    sift_up(sw, i);
    sift_down(sw, last->slot - 1);
  }
  rearm(sw);
}

/* Runs the earliest entry if it is due at or before t. Returns 1 if one ran. */
static int run_one(lp2p_swarm *sw, lp2p_tstamp t) {
  if (!sw->n_heap || sw->heap[0]->due > t) return 0;
  lp2p__sched_entry *e = sw->heap[0];
  if (sw->manual && e->due > sw->manual_now) sw->manual_now = e->due;
  lp2p__sched_cancel(sw, e);
  lp2p__swarm_enter(sw);
  e->fn(e); /* may free e's owner */
  lp2p__swarm_leave(sw);
  return 1;
}

static void real_timer_cb(uv_timer_t *h) {
  lp2p_swarm *sw = h->data;
  sw->sched_armed = 0;
  lp2p_tstamp now = lp2p__swarm_now(sw);
  /* bounded: entries scheduled for "now" by the callbacks run on the next turn */
  for (size_t n = sw->n_heap; n-- > 0 && run_one(sw, now);) {
  }
  rearm(sw);
}

void lp2p__sched_run_all(lp2p_swarm *sw) {
  while (run_one(sw, LP2P_TSTAMP_NEVER)) {
  }
}

int lp2p__sched_init(lp2p_swarm *sw) {
  sw->manual = sw->cfg.manual_clock != 0;
  sw->manual_now = MANUAL_EPOCH;
  int rv = uv_timer_init(sw->loop, &sw->sched_timer);
  if (rv) return lp2p__uv_err(rv);
  sw->sched_timer.data = sw;
  sw->sched_open = 1;
  return 0;
}

void lp2p__sched_close(lp2p_swarm *sw, uv_close_cb cb) {
  if (!sw->sched_open) return;
  sw->sched_close_cb = cb;
  rearm(sw);
}

int lp2p_swarm_advance(lp2p_swarm *sw, uint64_t ms) {
  if (!sw) return LP2P_ERR_INVAL;
  return lp2p_swarm_advance_to(sw, sw->manual_now + ms);
}

int lp2p_swarm_advance_to(lp2p_swarm *sw, lp2p_tstamp t) {
  if (!sw || !sw->manual || sw->depth > 0 || sw->freeing) return sw ? LP2P_ERR_STATE : LP2P_ERR_INVAL;
  if (t < sw->manual_now) return LP2P_ERR_INVAL;
  while (run_one(sw, t)) {
  }
  sw->manual_now = t;
  lp2p__swarm_enter(sw); /* deferred work queued outside any callback */
  lp2p__swarm_leave(sw);
  return 0;
}

lp2p_tstamp lp2p_swarm_next_deadline(const lp2p_swarm *sw) {
  return sw && sw->n_heap ? sw->heap[0]->due : LP2P_TSTAMP_NEVER;
}
