/* lp2p/reqresp.h - generic request-response behaviour: one stream per request.
 *
 * Wire (the framing of rust-libp2p's request_response json/cbor codecs): the
 * requester opens a NEW stream proposing the app's protocol id(s), writes the
 * request body (no length prefix), half-closes (FIN) and reads the response to
 * EOF; the responder reads the request to EOF, writes the response and
 * half-closes. A responder that has no answer (the app dropped the channel)
 * half-closes without writing: the requester sees an empty body, which this
 * behaviour reports as RESPONSE_OMISSION (so an empty response cannot be sent:
 * lp2p_reqresp_respond with n == 0 is an omission). Bodies are opaque bytes;
 * the app chooses the encoding (JSON for rust's json codec).
 *
 * Outcomes. EVERY request ends in exactly ONE outcome event on each side:
 *   requester: LP2P_REQRESP_EV_OUTBOUND with outcome RESPONSE (data = the
 *     response) or a typed failure;
 *   responder: LP2P_REQRESP_EV_REQUEST (the request, with a response channel)
 *     when the request has arrived completely, then exactly one
 *     LP2P_REQRESP_EV_INBOUND: RESPONSE (the response and FIN went out and the
 *     stream closed cleanly) or a typed failure. An inbound stream that fails
 *     before its request is complete (too large, reset, timeout, over the
 *     per-peer limit) gets its LP2P_REQRESP_EV_INBOUND without a REQUEST event.
 * Failures (lp2p_reqresp_outcome): DIAL_FAILURE (no connection could be made:
 *   err = the dial error, LP2P_ERR_NOT_CONNECTED when no address is known),
 *   TIMEOUT (timeout_ms since lp2p_reqresp_send on the requester / since the
 *   stream opened on the responder; the stream is reset), CONNECTION_CLOSED
 *   (the connection died under the request: err = its reason, or
 *   LP2P_ERR_CANCELED at swarm free / behaviour removal), UNSUPPORTED_PROTOCOL
 *   (the peer accepts none of the proposed ids), TOO_LARGE (a body over the
 *   receiving side's limit; the stream is reset: the sender of a too large
 *   body sees IO with LP2P_ERR_RESET, as with rust-libp2p), RESPONSE_OMISSION (the responder's app
 *   dropped the channel), RESOURCE_LIMIT (a received body did not fit the
 *   resource manager's limits, err LP2P_ERR_LIMIT; the stream is reset), IO
 *   (anything else: the peer reset the stream, err LP2P_ERR_RESET; ...).
 * Resources: a body being received (request on the responder, response on the
 * requester) is charged to the swarm's resource manager as its buffer grows
 * (lp2p_stream_reserve_body: the protocol, connection, peer and node scopes;
 * not the stream scope, so a 10 MiB response fits the defaults: 16 MiB per
 * connection, 32 MiB per peer) and released once the app had it.
 *
 * Requests to a peer that is being dialed wait for that dial (the swarm joins
 * it); to a known but unconnected peer the swarm dials the peer store's
 * addresses; to a peer with no known address the swarm asks its peer router
 * (the Kademlia behaviour of lp2p/kad.h installs itself as one) and the
 * request fails with DIAL_FAILURE (LP2P_ERR_NOT_CONNECTED) only if that fails. At most max_outbound_per_peer requests to one peer have a stream
 * at once: the others wait in order (their timeout runs from the send call).
 * At most max_inbound_per_peer inbound request streams per peer are served at
 * once; more are reset (outcome IO, err LP2P_ERR_LIMIT).
 *
 * Response channels. The REQUEST event carries an lp2p_reqresp_channel owned
 * by the app from then on: the app answers with lp2p_reqresp_respond() (now or
 * later, from any loop callback) or drops it with lp2p_reqresp_channel_drop()
 * (RESPONSE_OMISSION for both sides). Each channel must be passed to exactly
 * one of the two, also after its stream died or the swarm was freed (then they
 * only free it); that is the only way it is released.
 *
 * Events are delivered to cfg.on_event, never from inside the call that
 * caused them (lp2p_reqresp_send, _respond, _drop), and at lp2p_swarm_free for
 * everything still in flight (CONNECTION_CLOSED, err LP2P_ERR_CANCELED).
 * Threading: loop thread only (lp2p/swarm.h). */
#ifndef LP2P_REQRESP_H
#define LP2P_REQRESP_H
#include "lp2p/swarm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Behaviour name: lp2p_swarm_behaviour(sw, LP2P_REQRESP_BEHAVIOUR) gives the first one added. */
#define LP2P_REQRESP_BEHAVIOUR "reqresp"
#define LP2P_REQRESP_MAX_PROTOCOLS 8

typedef struct lp2p_reqresp lp2p_reqresp;
typedef struct lp2p_reqresp_channel lp2p_reqresp_channel;

typedef enum lp2p_reqresp_outcome {
  LP2P_REQRESP_RESPONSE = 0,             /* requester: response received; responder: response sent */
  LP2P_REQRESP_DIAL_FAILURE = 1,
  LP2P_REQRESP_TIMEOUT = 2,
  LP2P_REQRESP_CONNECTION_CLOSED = 3,
  LP2P_REQRESP_UNSUPPORTED_PROTOCOL = 4,
  LP2P_REQRESP_TOO_LARGE = 5,
  LP2P_REQRESP_RESPONSE_OMISSION = 6,
  LP2P_REQRESP_IO = 7,
  LP2P_REQRESP_RESOURCE_LIMIT = 8 /* the body did not fit the resource manager's limits (err LP2P_ERR_LIMIT) */
} lp2p_reqresp_outcome;

/* "response", "dial-failure", "timeout", "connection-closed", "unsupported-protocol", "too-large",
 * "response-omission", "io", "resource-limit"; static storage. */
LP2P_EXTERN const char *lp2p_reqresp_outcome_name(lp2p_reqresp_outcome o);

typedef enum lp2p_reqresp_event_type {
  LP2P_REQRESP_EV_REQUEST = 1,  /* inbound request complete: data/len = body, channel = the answer path */
  LP2P_REQRESP_EV_OUTBOUND = 2, /* our request ended: outcome (+ data/len = response when RESPONSE) */
  LP2P_REQRESP_EV_INBOUND = 3   /* an inbound request ended: outcome */
} lp2p_reqresp_event_type;

typedef struct lp2p_reqresp_event {
  size_t struct_size;
  lp2p_reqresp_event_type type;
  uint64_t request_id;         /* OUTBOUND: the id lp2p_reqresp_send gave; REQUEST/INBOUND: the
                                  behaviour's own inbound numbering (same id for both events) */
  const lp2p_peer_id *peer;    /* the remote peer */
  const char *protocol;        /* the agreed id; NULL if none was agreed */
  lp2p_reqresp_outcome outcome; /* OUTBOUND / INBOUND */
  int err;                     /* the underlying LP2P_ERR_* (0 for RESPONSE) */
  const uint8_t *data;         /* REQUEST: request body; OUTBOUND RESPONSE: response body */
  size_t len;
  lp2p_reqresp_channel *channel; /* REQUEST only: owned by the app from now on (see header) */
} lp2p_reqresp_event;
/* The event and what it points to (except channel) are valid during the call only. */
typedef void (*lp2p_reqresp_event_fn)(lp2p_reqresp *rr, const lp2p_reqresp_event *ev, void *ud);

typedef struct lp2p_reqresp_config {
  size_t struct_size;             /* sizeof(lp2p_reqresp_config); set by lp2p_reqresp_config_default */
  const char *protocols[LP2P_REQRESP_MAX_PROTOCOLS]; /* REQUIRED, at least one; copied */
  size_t n_protocols;
  int inbound;                    /* serve inbound requests (register the ids); default 1 */
  size_t max_request_size;        /* default 1 MiB */
  size_t max_response_size;       /* default 10 MiB */
  uint32_t timeout_ms;            /* per request, both sides; default 10000 */
  uint32_t max_inbound_per_peer;  /* default 100 */
  uint32_t max_outbound_per_peer; /* default 100 streams at once; more requests queue */
  lp2p_reqresp_event_fn on_event; /* REQUIRED */
  void *ud;                       /* borrowed, passed to on_event */
} lp2p_reqresp_config;

LP2P_EXTERN void lp2p_reqresp_config_default(lp2p_reqresp_config *cfg);

/* Adds a request-response behaviour for cfg->protocols to sw (the swarm owns
 * it; *out, optional, stays valid until lp2p_swarm_free). Several behaviours
 * with different protocol ids may be added. Errors: LP2P_ERR_INVAL (no
 * protocol, no on_event, bad id), LP2P_ERR_NOMEM, swarm errors. */
LP2P_EXTERN int lp2p_reqresp_add(lp2p_swarm *sw, const lp2p_reqresp_config *cfg, lp2p_reqresp **out);

/* Sends req[0..n) (copied) to peer on protocol (NULL: propose every
 * configured id in order). *request_id (optional) receives the id its
 * OUTBOUND event will carry. Exactly one OUTBOUND event follows, never from
 * inside this call. Sync errors (no event then): LP2P_ERR_INVAL (ourselves, a
 * protocol not configured, n == 0), LP2P_ERR_TOO_LARGE (n > our own
 * max_request_size), LP2P_ERR_NOMEM, LP2P_ERR_STATE (swarm freeing). */
LP2P_EXTERN int lp2p_reqresp_send(lp2p_reqresp *rr, const lp2p_peer_id *peer, const char *protocol,
                                  const uint8_t *req, size_t n, uint64_t *request_id);

/* Answers with resp[0..n) (copied) and FIN; releases ch. 0, or (ch released
 * all the same): LP2P_ERR_CLOSED (the request already ended: its INBOUND
 * event was delivered), LP2P_ERR_TOO_LARGE (n > max_response_size: the stream
 * is reset, INBOUND outcome TOO_LARGE), LP2P_ERR_INVAL (ch NULL). */
LP2P_EXTERN int lp2p_reqresp_respond(lp2p_reqresp_channel *ch, const uint8_t *resp, size_t n);
/* Drops ch without an answer (RESPONSE_OMISSION for both sides); releases it. NULL ok. */
LP2P_EXTERN void lp2p_reqresp_channel_drop(lp2p_reqresp_channel *ch);
/* Non-zero while the channel's stream can still carry a response. */
LP2P_EXTERN int lp2p_reqresp_channel_open(const lp2p_reqresp_channel *ch);

/* Diagnostics. */
LP2P_EXTERN size_t lp2p_reqresp_pending_outbound(const lp2p_reqresp *rr); /* requests without outcome */
LP2P_EXTERN size_t lp2p_reqresp_pending_inbound(const lp2p_reqresp *rr);  /* inbound streams alive */

#ifdef __cplusplus
}
#endif
#endif /* LP2P_REQRESP_H */
