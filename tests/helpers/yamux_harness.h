/* tests/helpers/yamux_harness.h - test driver for the Yamux engine: a peer
 * wraps one lp2p_yamux, records its callbacks as events, keeps per-stream
 * receive state (stored bytes or PRNG-pattern verification), and two peers can
 * be pumped against each other in one process. Test code only.
 *
 * Ownership: yh_peer_init creates the session (with the given lp2p_mem, NULL =
 * libc); yh_peer_free frees it and the recorder (harness memory is libc). */
#ifndef LP2P_TEST_YAMUX_HARNESS_H
#define LP2P_TEST_YAMUX_HARNESS_H
#include <stddef.h>
#include <stdint.h>

#include "lp2p/yamux.h"

/* Event types: 'O' open (inbound), 'D' data (val = bytes), 'E' eof,
 * 'W' writable, 'C' close (val = err), 'P' pong (val = rtt), 'G' goaway (val = code). */
typedef struct yh_ev {
  char type;
  uint32_t id;
  int64_t val;
} yh_ev;

typedef struct yh_stream {
  int known;          /* opened locally or announced */
  int opened_in, eof, closed, close_err, writable;
  uint64_t rx;        /* bytes received */
  uint64_t unconsumed;/* received and not yet consumed */
  uint64_t tx;        /* bytes written (pattern offset) */
  uint64_t tx_goal;   /* pattern writer: total to send */
  int fin_after_goal; /* pattern writer: close_write when goal reached */
  uint8_t *data;      /* stored bytes (keep_data) */
  size_t len, cap;
  uint64_t bad;       /* pattern mismatches */
} yh_stream;

typedef struct yh_peer yh_peer;
/* Hook called from inside every callback (after recording): may act on the session. */
typedef void (*yh_hook)(yh_peer *p, char type, uint32_t id, int64_t val);

struct yh_peer {
  lp2p_yamux *mx;
  lp2p_yamux_config cfg;
  yh_ev *ev;
  size_t n_ev, cap_ev;
  yh_stream *st;      /* indexed by stream id */
  size_t n_st;
  int depth;          /* callback nesting (for the "close never nested" check) */
  int nested;         /* times a callback fired inside another callback */
  int auto_consume;   /* consume in on_stream_data (default 1) */
  int keep_data;      /* store received bytes (default 1) */
  int verify;         /* verify received bytes against the pattern of seed = stream id */
  int refuse;         /* on_stream_open return value */
  int record;         /* record events (default 1) */
  yh_hook hook;
  void *hook_ud;
  uint64_t now;
  uint64_t total_rx;
};

/* cfg NULL => defaults (keep-alive off). Returns 0 or the lp2p_yamux_new error. */
int yh_peer_init(yh_peer *p, int is_client, const lp2p_yamux_config *cfg, const lp2p_mem *mem);
void yh_peer_free(yh_peer *p);
yh_stream *yh_st(yh_peer *p, uint32_t id); /* grows the table as needed */
void yh_clear_events(yh_peer *p);
/* Renders events as text ("O1 D1:5 E1 C1:0"), adjacent data events of one stream merged. Static buffer. */
const char *yh_log(const yh_peer *p);
/* Drains all output into a malloc'd buffer (*len); NULL when empty. */
uint8_t *yh_take_output(yh_peer *p, size_t *len);
/* Feeds in[0..len) as pieces: split = 0 whole; split = k: [0,k) then [k,len);
 * split = SIZE_MAX: one byte at a time. Returns the last feed result. */
int64_t yh_feed_split(yh_peer *p, const uint8_t *in, size_t len, size_t split);
/* Moves output a->b and b->a until neither has output (or max_rounds). chunk 0
 * = whole buffers, else pieces of at most chunk bytes. Returns 0, or the first
 * feed error. */
int yh_pump(yh_peer *a, yh_peer *b, int max_rounds, size_t chunk);

/* Pattern: deterministic PRNG bytes for (seed, offset). */
void yh_pattern(uint64_t seed, uint64_t off, uint8_t *out, size_t n);
/* Writes pattern bytes (seed = id) on stream id until tx_goal or the window is
 * full; closes the write side when the goal is reached and fin_after_goal. */
int yh_write_pattern(yh_peer *p, uint32_t id);

/* Frame builder: appends a header (and payload) to buf at *len (buf must be large enough). */
size_t yh_frame(uint8_t *buf, uint8_t type, uint16_t flags, uint32_t id, uint32_t length, const void *payload,
                size_t plen);

/* Describes frames as text, e.g. "WU+SYN#1=0 DATA#1=5 PING+ACK#0=7 GOAWAY#0=1" (static buffer);
 * a trailing partial frame shows as "PARTIAL". */
const char *yh_frames_text(const uint8_t *buf, size_t len);
/* Drains the output and describes it (yh_take_output + yh_frames_text). */
const char *yh_out_text(yh_peer *p);

#endif
