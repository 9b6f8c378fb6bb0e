/* lp2p/pairing.h - pair two devices by a short code (issue 11).
 *
 * One device (the INITIATOR) calls lp2p_pairing_start() and shows the code
 * "<nameplate>-word-word-word"; the other (the JOINER) types it into
 * lp2p_pairing_join(). The nameplate (digits) only locates the session; the
 * three words (BIP39 English, matched by their first four letters) are the
 * password and never leave the device except through the PAKE. A check on the
 * code catches most typos before any traffic (LP2P_ERR_SIGNATURE).
 *
 * Protocol /lp2p/pair/1.0.0, on a stream of the swarm (Noise-authenticated):
 * the joiner opens it to a candidate; the initiator sends HELLO (fresh session
 * id, the nameplate's tag, its CPace share); a joiner that meets another
 * nameplate never runs the PAKE with it (WRONG_NAMEPLATE, it tries the next
 * candidate). CPace on ristretto255/SHA-512 with the channel identifier
 * binding BOTH peer ids (initiator, joiner) and the initiator's session id;
 * explicit key confirmation both ways; then each side sends its device info
 * (name, listen addresses) sealed with keys from the session key. Details and
 * wire format: protocols/pairing/engine/pair_int.h.
 *
 * One guess per code: a session that failed after a guess could be tested
 * (wrong words, tampering) burns the code on BOTH sides: the initiator's code
 * is dead (start a new one) and the joiner refuses the same code again
 * (LP2P_ERR_STATE). At most max_failures (3) failed sessions per
 * failure_window_ms (10 min): then lp2p_pairing_start() returns LP2P_ERR_LIMIT.
 * A code is single use and expires after code_lifetime_ms (5 min): FAILED event
 * with LP2P_PAIRING_FAIL_EXPIRED. Attacker: 2^-29 per guess, <= 18 guesses/h.
 *
 * Rendezvous (how the joiner finds the initiator) is behind
 * lp2p_pair_rendezvous: backends advertise the nameplate (initiator) and find
 * candidates (joiner). Built in ("direct"): the peer given to
 * lp2p_pairing_join(), else every peer the swarm is connected to. mDNS
 * (the nameplate's tag in the mDNS record's TXT, lp2p__pair_mdns_tag) and DHT
 * (provider record under lp2p__pair_dht_key(nameplate, unix/300)) backends plug
 * in through lp2p_pairing_add_rendezvous().
 *
 * Success: both sides record the device in the registry (lp2p/devices.h, which
 * must be added first) and get a PAIRED event. Events never come from inside
 * the call that caused them.
 * Threading: loop thread only. */
#ifndef LP2P_PAIRING_H
#define LP2P_PAIRING_H
#include "lp2p/devices.h"
#include "lp2p/swarm.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LP2P_PAIRING_PROTOCOL "/lp2p/pair/1.0.0"
#define LP2P_PAIRING_BEHAVIOUR "pairing"
#define LP2P_PAIRING_CODE_MAX 128

typedef struct lp2p_pairing lp2p_pairing;

typedef enum lp2p_pairing_fail {
  LP2P_PAIRING_FAIL_WRONG_CODE = 1,      /* key confirmation failed: wrong words (code burned) */
  LP2P_PAIRING_FAIL_TAMPERED = 2,        /* invalid point / sealed info did not open (code burned) */
  LP2P_PAIRING_FAIL_WRONG_NAMEPLATE = 3, /* (internal: the joiner tries the next candidate) */
  LP2P_PAIRING_FAIL_EXPIRED = 4,         /* the code or the session timed out */
  LP2P_PAIRING_FAIL_PROTOCOL = 5,        /* malformed message, stream closed early */
  LP2P_PAIRING_FAIL_ABORTED = 6,         /* the peer aborted (its reason in peer_reason) */
  LP2P_PAIRING_FAIL_LOCAL = 7,
  LP2P_PAIRING_FAIL_NO_PEER = 8,         /* joiner: no candidate ran a session with our nameplate */
  LP2P_PAIRING_FAIL_CANCELED = 9         /* lp2p_pairing_cancel, swarm freed */
} lp2p_pairing_fail;

/* "wrong-code", "tampered", "wrong-nameplate", "expired", "protocol", "aborted", "local", "no-peer",
 * "canceled"; static storage. */
LP2P_EXTERN const char *lp2p_pairing_fail_name(lp2p_pairing_fail f);

typedef enum lp2p_pairing_role { LP2P_PAIRING_INITIATOR = 1, LP2P_PAIRING_JOINER = 2 } lp2p_pairing_role;

typedef enum lp2p_pairing_event_type {
  LP2P_PAIRING_EV_PAIRED = 1, /* peer, name, addrs, sas */
  LP2P_PAIRING_EV_FAILED = 2  /* fail, peer (NULL if none), code_burned */
} lp2p_pairing_event_type;

typedef struct lp2p_pairing_event {
  size_t struct_size;
  lp2p_pairing_event_type type;
  lp2p_pairing_role role;
  const lp2p_peer_id *peer;
  const char *name;          /* PAIRED: the peer's device name */
  const char *const *addrs;  /* PAIRED: the peer's listen addresses (text) */
  size_t n_addrs;
  const char *sas;           /* PAIRED: short authentication string "123 456" (both sides equal) */
  lp2p_pairing_fail fail;    /* FAILED */
  int peer_reason;           /* FAILED with ABORTED: the peer's lp2p_pairing_fail */
  int code_burned;           /* FAILED: the code can no longer be used */
} lp2p_pairing_event;
typedef void (*lp2p_pairing_event_fn)(lp2p_pairing *p, const lp2p_pairing_event *ev, void *ud);

typedef struct lp2p_pairing_config {
  size_t struct_size;            /* sizeof(lp2p_pairing_config); set by lp2p_pairing_config_default */
  const char *device_name;       /* copied (<= 64 bytes); default "lp2p device" */
  unsigned nameplate_digits;     /* default 3 (LAN); use 6+ for a shared DHT */
  uint32_t code_lifetime_ms;     /* default 300000 */
  unsigned max_failures;         /* default 3 */
  uint32_t failure_window_ms;    /* default 600000 */
  uint32_t session_timeout_ms;   /* one PAKE session; default 30000 */
  lp2p_pairing_event_fn on_event; /* REQUIRED */
  void *ud;
} lp2p_pairing_config;

LP2P_EXTERN void lp2p_pairing_config_default(lp2p_pairing_config *cfg);

/* Adds the pairing behaviour (requires lp2p_devices_add first: LP2P_ERR_STATE otherwise). */
LP2P_EXTERN int lp2p_pairing_add(lp2p_swarm *sw, const lp2p_pairing_config *cfg, lp2p_pairing **out);

/* Initiator: issues a new code (replacing an unused one), writes its text to code[cap]
 * (LP2P_PAIRING_CODE_MAX is enough) and advertises the nameplate on every rendezvous backend.
 * Errors: LP2P_ERR_LIMIT (too many failed sessions in the window), LP2P_ERR_STATE (a session
 * is running on the current code), LP2P_ERR_BUFSIZE. */
LP2P_EXTERN int lp2p_pairing_start(lp2p_pairing *p, char *code, size_t cap);
/* Joiner: checks the typed code, then runs sessions with candidates: peer if given (the swarm
 * dials it through the peer store), else the rendezvous backends' and the connected peers.
 * Errors (no event then): LP2P_ERR_PARSE (not a code), LP2P_ERR_SIGNATURE (a typo: the check
 * failed), LP2P_ERR_STATE (this code was burned, or a join is running). */
LP2P_EXTERN int lp2p_pairing_join(lp2p_pairing *p, const char *code, const lp2p_peer_id *peer);
/* Ends the current code / join (FAILED with CANCELED for a join or a running session). */
LP2P_EXTERN void lp2p_pairing_cancel(lp2p_pairing *p);

/* ---- rendezvous backends ---- */
typedef void (*lp2p_pair_found_fn)(void *ctx, const lp2p_peer_id *peer);
typedef struct lp2p_pair_rendezvous {
  size_t struct_size;
  const char *name;
  /* initiator: make us findable under nameplate (tag = SHA-256 "lp2p-pair-mdns" tag, dht_key for
   * the current epoch) until withdraw. */
  int (*advertise)(void *self, lp2p_swarm *sw, const char *nameplate, const uint8_t tag[32],
                   const uint8_t dht_key[32]);
  void (*withdraw)(void *self, lp2p_swarm *sw);
  /* joiner: report candidates through found(ctx, peer) (later, from loop callbacks) until cancel;
   * found(ctx, NULL) once the backend has nothing more to report. */
  int (*find)(void *self, lp2p_swarm *sw, const char *nameplate, const uint8_t tag[32],
              const uint8_t dht_key[32], lp2p_pair_found_fn found, void *ctx);
  void (*cancel)(void *self, lp2p_swarm *sw);
  void (*destroy)(void *self); /* at swarm free */
} lp2p_pair_rendezvous;
/* Adds a backend (vt borrowed, static storage; self owned from now on). At most 4. */
LP2P_EXTERN int lp2p_pairing_add_rendezvous(lp2p_pairing *p, const lp2p_pair_rendezvous *vt, void *self);
/* The DHT backend on a Kademlia behaviour (lp2p/kad.h, add it before pairing): the initiator
 * provides SHA-256("lp2p-pair-dht", nameplate, unix/300) (as a sha2-256 multihash); the joiner
 * finds providers of the current and the previous epoch's key. No "unprovide" exists: the record
 * outlives the code until the DHT's provider TTL (a joiner meeting an ended code moves on).
 * Use nameplate_digits >= 6 on a shared DHT. */
typedef struct lp2p_kad lp2p_kad;
LP2P_EXTERN int lp2p_pairing_add_dht_rendezvous(lp2p_pairing *p, lp2p_kad *kad);
/* The mDNS backend on an mDNS service (lp2p/mdns.h, add it before pairing): the initiator
 * announces the extra TXT string "lp2p-pair=<hex of the nameplate's tag>" with its mDNS record
 * (tag = SHA-256(lv_cat("lp2p-pair-mdns", nameplate)): from the nameplate only, nothing about
 * the words); the joiner's candidates are the mDNS peers carrying the typed nameplate's tag,
 * known or announced while the join runs. Peers of another nameplate are never contacted.
 * Candidates when a join has no peer: the connected peers and, with at least one backend that
 * finds, the backends' candidates; without any backend, also every peer with a discovery-source
 * address in the peer store and every peer discovered while the join runs. In every case the
 * HELLO's nameplate tag keeps the PAKE to the right session. */
typedef struct lp2p_mdns_service lp2p_mdns_service;
LP2P_EXTERN int lp2p_pairing_add_mdns_rendezvous(lp2p_pairing *p, lp2p_mdns_service *m);
/* The swarm p belongs to. */
LP2P_EXTERN lp2p_swarm *lp2p_pairing_swarm(const lp2p_pairing *p);

#ifdef __cplusplus
}
#endif
#endif /* LP2P_PAIRING_H */
