/* protocols/pairing/engine/pair_int.h - the sans-IO pairing engine (issue 11): codes, CPace,
 * the four pairing messages and the code lifetime policy. Internal (not installed, not
 * exported); the pairing behaviour (stream /lp2p/pair/1.0.0, rendezvous, registry) drives it.
 *
 * No sockets, no clocks, no libuv: time comes in as `now` (lp2p_tstamp, monotonic ms) except for
 * the DHT epoch, which both devices must agree on and therefore takes wall-clock unix seconds.
 *
 *  wordlist.c  the BIP-0039 English list (generated, see gen_wordlist.py)
 *  code.c      pairing codes "<nameplate>-word-word-word": generate, parse, check, rendezvous ids
 *  cpace.c     CPace (draft-irtf-cfrg-cpace, ristretto255 + SHA-512) building blocks
 *  session.c   the pairing session state machine and its messages
 *  policy.c    code lifetime: single use, burn on failure, expiry, failure rate limit
 *
 * ---- The code ------------------------------------------------------------------------------
 * "<nameplate>-w1-w2-w3": nameplate = LP2P__PAIR_NP_MIN..MAX decimal digits (3 is enough on a LAN,
 * 6+ when the rendezvous is a shared DHT), public: it only locates the session. w1..w3 are BIP39
 * words (11 bits each, 33 bits); they are the password. Check: a code is valid only when the
 * first LP2P__PAIR_CHECK_BITS bits of SHA-512(lv_cat("lp2p-pair-check", nameplate, i1, i2, i3))
 * are zero (i = word index, 2 bytes big-endian). Generation draws all three words uniformly and
 * retries until the check holds, so codes are uniform over the valid set: the password keeps
 * 33 - 4 = 29 bits of entropy (5.4e8 codes per nameplate). The check is public and depends on
 * nothing secret beyond the words themselves, so it reveals nothing an attacker could not
 * compute; it rejects a wrong word or a wrong nameplate digit with probability 15/16 before any
 * network traffic, a non-word always. Parsing accepts full words or their first four letters
 * (BIP39 words are unique there), any case, '-' or spaces between parts.
 * PRS (the CPace password) = the three words' indices (6 bytes, "lp2p-pair-prs" domain), never
 * the nameplate.
 *
 * ---- Rendezvous identifiers (reveal nothing about the words) --------------------------------
 * mdns_tag        = SHA-256(lv_cat("lp2p-pair-mdns", nameplate))
 * dht_key(epoch)  = SHA-256(lv_cat("lp2p-pair-dht", nameplate, u64be(epoch))),
 *                   epoch = unix_seconds / 300; a searcher tries the current and previous epoch.
 *
 * ---- Messages (stream /lp2p/pair/1.0.0, over Noise) -----------------------------------------
 * Every message is a frame: u16 big-endian body length, then the body; body[0] is the type.
 *   1 HELLO   I->J  sid[16] mdns_tag[32] Ya[32]                     (81 bytes body)
 *   2 SHARE   J->I  Yb[32] Tb[64]                                   (97)
 *   3 CONFIRM I->J  Ta[64] sealed_device_info                       (65 + 16 + info)
 *   4 INFO    J->I  sealed_device_info                              (1 + 16 + info)
 *   5 ABORT   both  reason[1]  (unauthenticated courtesy; the receiver fails with it)
 * Strict: exact lengths, no trailing bytes, unknown types are a protocol error, bodies above
 * LP2P__PAIR_MAX_BODY are refused before buffering.
 * CPace: CI = lv_cat("/lp2p/pair/1.0.0", initiator peer id, joiner peer id) (fixed order),
 * sid from the initiator, ADa = ADb = "". ISK per the draft (initiator-responder transcript).
 * Confirmation per the draft's section "Key confirmation": mac_key = SHA-512("CPaceMac" || sid ||
 * ISK), Ta = HMAC-SHA-512(mac_key, lv_cat(Ya, ADa)), Tb = HMAC-SHA-512(mac_key, lv_cat(Yb, ADb)).
 * Seal keys, session key and SAS: SHA-512(lv_cat("lp2p-pair " label, sid, ISK)) truncated;
 * the AEAD is XChaCha20-Poly1305 with a zero nonce (each key seals exactly one message), the
 * message type byte as associated data. Device info plaintext: u8 name_len, name (<= 64 bytes),
 * u8 n_addrs (<= 16), then n_addrs x (u8 len (1..255), bytes) — opaque to the engine (binary
 * multiaddrs by convention; the behaviour validates them).
 *
 * ---- What an attacker gets -------------------------------------------------------------------
 * One online guess per code (any failed confirmation burns the code on the side that saw it, and
 * the joiner burns its typed code as soon as it has released Tb): success 2^-29 per code. The
 * policy allows at most 3 failed sessions per 10 minutes per initiator: <= 18 guesses per hour,
 * <= 3.4e-8 success per hour, and each guess costs the victim a fresh code. */
#ifndef LP2P_PAIR_INT_H
#define LP2P_PAIR_INT_H
#include <stddef.h>
#include <stdint.h>

#include "lp2p/common.h"

#define LP2P__PAIR_NWORDS 2048
#define LP2P__PAIR_CODE_WORDS 3
#define LP2P__PAIR_CHECK_BITS 4
#define LP2P__PAIR_NP_MIN 1
#define LP2P__PAIR_NP_MAX 12
#define LP2P__PAIR_CODE_MAX 128 /* text form incl. NUL */
#define LP2P__PAIR_PROTOCOL "/lp2p/pair/1.0.0"
#define LP2P__PAIR_EPOCH_SECONDS 300u

#define LP2P__PAIR_SID_LEN 16
#define LP2P__PAIR_TAG_LEN 32
#define LP2P__PAIR_POINT_LEN 32
#define LP2P__PAIR_MAC_LEN 64
#define LP2P__PAIR_ISK_LEN 64
#define LP2P__PAIR_KEY_LEN 32
#define LP2P__PAIR_PEER_MAX 256   /* peer id bytes */
#define LP2P__PAIR_NAME_MAX 64
#define LP2P__PAIR_ADDRS_MAX 16
#define LP2P__PAIR_ADDR_MAX 255
#define LP2P__PAIR_INFO_MAX (1 + LP2P__PAIR_NAME_MAX + 1 + LP2P__PAIR_ADDRS_MAX * (1 + LP2P__PAIR_ADDR_MAX))
#define LP2P__PAIR_AEAD_TAG 16
#define LP2P__PAIR_MAX_BODY (1 + LP2P__PAIR_MAC_LEN + LP2P__PAIR_AEAD_TAG + LP2P__PAIR_INFO_MAX)
#define LP2P__PAIR_MAX_FRAME (2 + LP2P__PAIR_MAX_BODY)

enum {
  LP2P__PAIR_MSG_HELLO = 1,
  LP2P__PAIR_MSG_SHARE = 2,
  LP2P__PAIR_MSG_CONFIRM = 3,
  LP2P__PAIR_MSG_INFO = 4,
  LP2P__PAIR_MSG_ABORT = 5,
};

/* ---- wordlist.c ---- */
extern const char *const lp2p__pair_words[LP2P__PAIR_NWORDS];

/* ---- code.c ---- */
typedef struct lp2p__pair_code {
  char nameplate[LP2P__PAIR_NP_MAX + 1]; /* NUL-terminated digits */
  uint16_t words[LP2P__PAIR_CODE_WORDS]; /* indices into lp2p__pair_words */
} lp2p__pair_code;

typedef void (*lp2p__pair_rng_fn)(void *ctx, uint8_t *buf, size_t len);

/* Index of a word given in full or by its first four letters (case-insensitive; a 3-letter word
 * only in full; letters after the fourth are ignored). len = token length. -1 if none. */
int lp2p__pair_word_find(const char *tok, size_t len);
/* 1 if the code passes the check (nameplate digits, length, checksum), else 0. */
int lp2p__pair_code_check(const lp2p__pair_code *c);
/* A fresh valid code with a nameplate of np_digits digits (rng NULL = randombytes_buf).
 * LP2P_ERR_INVAL for a bad np_digits. */
int lp2p__pair_code_generate(lp2p__pair_code *c, unsigned np_digits, lp2p__pair_rng_fn rng,
                             void *rng_ctx);
/* Parse a typed code. LP2P_ERR_PARSE: malformed / unknown word; LP2P_ERR_SIGNATURE: every part
 * is well-formed but the check fails (a typo). *c is wiped on error. */
int lp2p__pair_code_parse(lp2p__pair_code *c, const char *text);
/* "123-word-word-word" into buf (NUL-terminated). Returns length or LP2P_ERR_BUFSIZE. */
int lp2p__pair_code_format(const lp2p__pair_code *c, char *buf, size_t cap);
/* PRS for CPace: "lp2p-pair-prs" domain + 3 x u16be word index (19 bytes). */
#define LP2P__PAIR_PRS_LEN 19
void lp2p__pair_code_prs(const lp2p__pair_code *c, uint8_t prs[LP2P__PAIR_PRS_LEN]);
/* Rendezvous identifiers (from the nameplate only). */
void lp2p__pair_mdns_tag(const char *nameplate, uint8_t tag[32]);
void lp2p__pair_dht_key(const char *nameplate, uint64_t epoch, uint8_t key[32]);
static inline uint64_t lp2p__pair_epoch(uint64_t unix_seconds) {
  return unix_seconds / LP2P__PAIR_EPOCH_SECONDS;
}

/* ---- cpace.c (draft-irtf-cfrg-cpace, G_Ristretto255, H = SHA-512, s_in_bytes = 128) ---- */
#define LP2P__CPACE_DSI "CPaceRistretto255"
/* lv_cat of n (ptr, len) pairs into out (cap). Returns length or LP2P_ERR_BUFSIZE. */
int lp2p__cpace_lv_cat(uint8_t *out, size_t cap, size_t n, const uint8_t *const *parts,
                       const size_t *lens);
/* generator_string(DSI, PRS, CI, sid, 128). Returns length or LP2P_ERR_BUFSIZE. */
int lp2p__cpace_generator_string(uint8_t *out, size_t cap, const uint8_t *prs, size_t prs_len,
                                 const uint8_t *ci, size_t ci_len, const uint8_t *sid,
                                 size_t sid_len);
/* g (encoded) = element_derivation(SHA-512(generator_string)). */
int lp2p__cpace_generator(uint8_t g[32], const uint8_t *prs, size_t prs_len, const uint8_t *ci,
                          size_t ci_len, const uint8_t *sid, size_t sid_len);
/* sample_scalar per the draft: 32 random bytes, bits >= 252 cleared. */
void lp2p__cpace_sample_scalar(uint8_t y[32], lp2p__pair_rng_fn rng, void *rng_ctx);
/* Y = encode(y * g). LP2P_ERR_INTERNAL if g is invalid or the result is the identity. */
int lp2p__cpace_share(uint8_t Y[32], const uint8_t y[32], const uint8_t g[32]);
/* K = scalar_mult_vfy(y, X); LP2P_ERR_DECRYPT when X does not decode or K = G.I (abort). */
int lp2p__cpace_vfy(uint8_t K[32], const uint8_t y[32], const uint8_t X[32]);
/* ISK = SHA-512(lv_cat(DSI "_ISK", sid, K) || transcript_ir(Ya, ADa, Yb, ADb)). */
int lp2p__cpace_isk_ir(uint8_t isk[64], const uint8_t *sid, size_t sid_len, const uint8_t K[32],
                       const uint8_t Ya[32], const uint8_t *ada, size_t ada_len,
                       const uint8_t Yb[32], const uint8_t *adb, size_t adb_len);

/* ---- session.c ---- */
typedef enum lp2p__pair_role { LP2P__PAIR_INITIATOR = 1, LP2P__PAIR_JOINER = 2 } lp2p__pair_role;

typedef enum lp2p__pair_fail {
  LP2P__PAIR_OK = 0,
  LP2P__PAIR_FAIL_WRONG_CODE = 1,      /* key confirmation failed (wrong words) */
  LP2P__PAIR_FAIL_TAMPERED = 2,        /* invalid point, sealed info does not open, ... */
  LP2P__PAIR_FAIL_WRONG_NAMEPLATE = 3, /* the peer's session has another nameplate: no PAKE */
  LP2P__PAIR_FAIL_EXPIRED = 4,         /* deadline passed */
  LP2P__PAIR_FAIL_PROTOCOL = 5,        /* malformed / unexpected message */
  LP2P__PAIR_FAIL_ABORTED = 6,         /* the peer sent ABORT (its reason in abort_reason) */
  LP2P__PAIR_FAIL_LOCAL = 7,           /* local error (bad arguments, out of memory) */
} lp2p__pair_fail;
const char *lp2p__pair_fail_name(lp2p__pair_fail f);

typedef struct lp2p__pair_device_info {
  uint8_t name_len;
  char name[LP2P__PAIR_NAME_MAX + 1]; /* NUL-terminated; bytes as received */
  uint8_t n_addrs;
  uint8_t addr_len[LP2P__PAIR_ADDRS_MAX];
  uint8_t addr[LP2P__PAIR_ADDRS_MAX][LP2P__PAIR_ADDR_MAX];
} lp2p__pair_device_info;

typedef enum lp2p__pair_state {
  LP2P__PAIR_S_SEND_HELLO = 0, /* initiator: HELLO queued, waiting for SHARE */
  LP2P__PAIR_S_WAIT_HELLO,     /* joiner */
  LP2P__PAIR_S_WAIT_SHARE,     /* initiator */
  LP2P__PAIR_S_WAIT_CONFIRM,   /* joiner */
  LP2P__PAIR_S_WAIT_INFO,      /* initiator */
  LP2P__PAIR_S_PAIRED,
  LP2P__PAIR_S_FAILED,
} lp2p__pair_state;

typedef struct lp2p__pair_session lp2p__pair_session;

typedef struct lp2p__pair_params {
  lp2p__pair_role role;
  const lp2p__pair_code *code;
  const uint8_t *local_id; size_t local_id_len;   /* binary peer ids (from the Noise session) */
  const uint8_t *remote_id; size_t remote_id_len;
  const lp2p__pair_device_info *local_info;       /* sealed to the peer; copied */
  lp2p__pair_rng_fn rng; void *rng_ctx;           /* NULL: randombytes_buf */
  lp2p_tstamp now;
  uint64_t timeout_ms;                            /* 0: 60 s; the session fails EXPIRED after */
} lp2p__pair_params;

/* A session (malloc'd; free with lp2p__pair_session_free, which wipes it). The initiator's HELLO
 * is queued at once. NULL on bad parameters (invalid code, id too long) or no memory. */
lp2p__pair_session *lp2p__pair_session_new(const lp2p__pair_params *p);
void lp2p__pair_session_free(lp2p__pair_session *s);
/* Feed received bytes (any split). Returns 0 (check state), or LP2P_ERR_STATE when the session
 * is already over. Failures are reported through the state, never as a crash. */
int lp2p__pair_session_input(lp2p__pair_session *s, const uint8_t *data, size_t len,
                             lp2p_tstamp now);
/* Timer: fails the session EXPIRED once now >= deadline. */
void lp2p__pair_session_tick(lp2p__pair_session *s, lp2p_tstamp now);
/* Deadline (absolute) the runtime should arm a timer for. */
lp2p_tstamp lp2p__pair_session_deadline(const lp2p__pair_session *s);
/* Bytes waiting to be sent: pointer + length; consume them with _output_done. */
const uint8_t *lp2p__pair_session_output(const lp2p__pair_session *s, size_t *len);
void lp2p__pair_session_output_done(lp2p__pair_session *s, size_t n);
/* The runtime saw EOF / reset: fails the session (PROTOCOL) unless already over. */
void lp2p__pair_session_closed(lp2p__pair_session *s);
lp2p__pair_state lp2p__pair_session_state(const lp2p__pair_session *s);
lp2p__pair_fail lp2p__pair_session_failure(const lp2p__pair_session *s);
/* The reason byte of a received ABORT (a lp2p__pair_fail value as the peer saw it), else 0. */
uint8_t lp2p__pair_session_abort_reason(const lp2p__pair_session *s);
/* 1 when the code must be burned (the session failed after a PAKE guess could have been
 * tested: initiator received SHARE, joiner sent SHARE). */
int lp2p__pair_session_burns_code(const lp2p__pair_session *s);
/* After PAIRED only (else NULL): the remote device info, 32-byte session key, SAS (6 digits as
 * "123 456", NUL-terminated, 8 bytes). */
const lp2p__pair_device_info *lp2p__pair_session_remote_info(const lp2p__pair_session *s);
const uint8_t *lp2p__pair_session_key(const lp2p__pair_session *s);
const char *lp2p__pair_session_sas(const lp2p__pair_session *s);

/* Device info plaintext codec (strict). encode returns length or LP2P_ERR_INVAL/BUFSIZE;
 * decode returns 0 or LP2P_ERR_PARSE. */
int lp2p__pair_info_encode(const lp2p__pair_device_info *di, uint8_t *out, size_t cap);
int lp2p__pair_info_decode(lp2p__pair_device_info *di, const uint8_t *in, size_t len);

/* ---- policy.c ---- */
#define LP2P__PAIR_DEFAULT_LIFETIME_MS (5u * 60u * 1000u)
#define LP2P__PAIR_DEFAULT_MAX_FAILURES 3u
#define LP2P__PAIR_DEFAULT_WINDOW_MS (10u * 60u * 1000u)
#define LP2P__PAIR_FAILURES_MAX 16u

typedef enum lp2p__pair_code_status {
  LP2P__PAIR_CODE_NONE = 0,   /* no code issued */
  LP2P__PAIR_CODE_ACTIVE,     /* usable */
  LP2P__PAIR_CODE_IN_USE,     /* a session runs on it (one at a time) */
  LP2P__PAIR_CODE_USED,       /* paired once: single use */
  LP2P__PAIR_CODE_BURNED,     /* a session failed after a guess */
  LP2P__PAIR_CODE_EXPIRED,
} lp2p__pair_code_status;

/* The initiator's (code owner's) policy; the joiner uses the same object for its typed code
 * (issue = the user typed it; max_failures applies per joiner too). Plain struct, no memory. */
typedef struct lp2p__pair_policy {
  uint64_t lifetime_ms, window_ms;
  unsigned max_failures;
  lp2p__pair_code code;
  lp2p__pair_code_status status;
  lp2p_tstamp issued_at;
  unsigned n_fail;                        /* entries in fail_at (oldest first) */
  lp2p_tstamp fail_at[LP2P__PAIR_FAILURES_MAX];
} lp2p__pair_policy;

/* 0 = defaults (5 min, 3 failures, 10 min). max_failures is capped at LP2P__PAIR_FAILURES_MAX. */
void lp2p__pair_policy_init(lp2p__pair_policy *p, uint64_t lifetime_ms, unsigned max_failures,
                            uint64_t window_ms);
/* Install a new code (replacing any previous one). LP2P_ERR_LIMIT while max_failures failed
 * sessions lie within the window; LP2P_ERR_INVAL for an invalid code. */
int lp2p__pair_policy_issue(lp2p__pair_policy *p, const lp2p__pair_code *c, lp2p_tstamp now);
/* Status at `now` (an ACTIVE code past its lifetime reads EXPIRED). */
lp2p__pair_code_status lp2p__pair_policy_status(lp2p__pair_policy *p, lp2p_tstamp now);
/* A session may start on the code: 0 and the code goes IN_USE; LP2P_ERR_TIMEOUT expired,
 * LP2P_ERR_LIMIT rate limited, LP2P_ERR_STATE used/burned/in use/none. */
int lp2p__pair_policy_begin(lp2p__pair_policy *p, lp2p_tstamp now);
/* The session ended: paired -> USED; burns_code -> BURNED and a failure recorded; any other
 * failure -> ACTIVE again (no guess was possible). The code is wiped unless ACTIVE. */
void lp2p__pair_policy_end(lp2p__pair_policy *p, const lp2p__pair_session *s, lp2p_tstamp now);
/* Failed sessions within the window ending at now. */
unsigned lp2p__pair_policy_failures(lp2p__pair_policy *p, lp2p_tstamp now);

#endif
