/* mdns/engine/mdns_codec.h - the small DNS message codec used by the mDNS engine (internal).
 *
 * Why our own codec and not c-ares: the installed c-ares is 1.18 (ares_dns_parse() only exists
 * from 1.22), its older ares_parse_*_reply() helpers each read one record type from the answer
 * section of a unicast reply, and they fail a whole message on any bad record. mDNS needs every
 * section, the cache-flush bit, per-record leniency (a bad record drops that record only), strict
 * bounds we can state and fuzz, and a builder with name compression. The engines library also
 * links no c-ares. About 400 lines with no allocation were simpler to bound than an adapter.
 *
 * Parsing (lp2p_mdns_parse) never allocates and never reads outside [p, p+n):
 *   - Packets larger than LP2P_MDNS_MAX_PACKET or shorter than the 12-byte header: LP2P_ERR_PARSE.
 *   - Names: labels of 1..63 bytes, a whole name (wire form, root byte included) of at most
 *     255 bytes, compression pointers only to an offset strictly before the start of the name
 *     part that the previous jump led to (so chains always go backward and cannot loop), at most
 *     LP2P_MDNS_MAX_POINTER_HOPS pointers per name, label types 0x40/0x80 rejected.
 *   - Framing: a question or record whose owner name, fixed fields or RDLENGTH do not fit (or a
 *     header count that promises more entries than the bytes hold) breaks the framing: the whole
 *     packet is rejected (LP2P_ERR_PARSE), since nothing after it can be located.
 *   - A record whose framing is intact but whose content is bad (class not IN, A not 4 bytes,
 *     AAAA not 16, PTR/SRV target malformed or not filling RDLENGTH, TXT strings overrunning
 *     RDLENGTH) is dropped alone (msg->dropped counts it). Questions with a class other than IN or
 *     ANY are dropped alike. Unknown record types are skipped silently (msg->skipped).
 *   - At most LP2P_MDNS_MAX_QUESTIONS questions and LP2P_MDNS_MAX_RECORDS records are kept; the
 *     rest are framed (checked) and counted in msg->skipped.
 *   Record rdata pointers point into the parsed packet: valid while it lives.
 *
 * Names are kept in uncompressed wire form (length-prefixed labels ending with the root byte 0)
 * and compared ASCII case-insensitively (DNS names are case-insensitive). */
#ifndef LP2P_MDNS_CODEC_H
#define LP2P_MDNS_CODEC_H
#include <stddef.h>
#include <stdint.h>

#include "lp2p/common.h"

#define LP2P_MDNS_TYPE_A 1u
#define LP2P_MDNS_TYPE_PTR 12u
#define LP2P_MDNS_TYPE_TXT 16u
#define LP2P_MDNS_TYPE_AAAA 28u
#define LP2P_MDNS_TYPE_SRV 33u
#define LP2P_MDNS_TYPE_ANY 255u
#define LP2P_MDNS_CLASS_IN 1u
#define LP2P_MDNS_CLASS_ANY 255u
#define LP2P_MDNS_CLASS_FLAG 0x8000u /* QU bit in questions, cache-flush bit in records */
#define LP2P_MDNS_FLAG_QR 0x8000u
#define LP2P_MDNS_FLAG_AA 0x0400u
#define LP2P_MDNS_FLAG_TC 0x0200u

#define LP2P_MDNS_MAX_PACKET 9000u /* RFC 6762 §17: mDNS messages stay within 9000 bytes */
#define LP2P_MDNS_MAX_NAME 255u    /* wire form, root byte included */
#define LP2P_MDNS_MAX_LABEL 63u
#define LP2P_MDNS_MAX_POINTER_HOPS 16u
#define LP2P_MDNS_MAX_QUESTIONS 16u
#define LP2P_MDNS_MAX_RECORDS 64u

enum { LP2P_MDNS_SEC_QUESTION = 0, LP2P_MDNS_SEC_ANSWER = 1, LP2P_MDNS_SEC_AUTHORITY = 2, LP2P_MDNS_SEC_ADDITIONAL = 3 };

typedef struct lp2p_mdns_name {
  uint8_t len;                       /* bytes used in wire, root byte included (1..255); 0 = unset */
  uint8_t wire[LP2P_MDNS_MAX_NAME];
} lp2p_mdns_name;

typedef struct lp2p_mdns_question {
  lp2p_mdns_name name;
  uint16_t type;
  uint16_t qclass;  /* without the QU bit */
  uint8_t unicast;  /* QU bit was set */
} lp2p_mdns_question;

typedef struct lp2p_mdns_record {
  lp2p_mdns_name name;
  uint16_t type;
  uint16_t rclass;       /* without the cache-flush bit (always IN for kept records) */
  uint8_t section;       /* LP2P_MDNS_SEC_ANSWER / _AUTHORITY / _ADDITIONAL */
  uint8_t cache_flush;
  uint32_t ttl;          /* seconds */
  const uint8_t *rdata;  /* into the packet */
  uint16_t rdlen;
  lp2p_mdns_name target; /* PTR and SRV: the target name (decompressed) */
  uint16_t srv_priority, srv_weight, srv_port;
  uint8_t addr[16];      /* A: first 4 bytes; AAAA: 16 bytes */
} lp2p_mdns_record;

typedef struct lp2p_mdns_msg {
  uint16_t id, flags;
  uint16_t counts[4];    /* header QD, AN, NS, AR */
  size_t nq, nrr;
  lp2p_mdns_question q[LP2P_MDNS_MAX_QUESTIONS];
  lp2p_mdns_record rr[LP2P_MDNS_MAX_RECORDS];
  size_t dropped;        /* malformed records/questions dropped */
  size_t skipped;        /* unknown types and entries beyond the caps */
} lp2p_mdns_msg;

/* Parse a whole message into *msg (see the header comment). 0 or LP2P_ERR_PARSE. */
int lp2p_mdns_parse(const uint8_t *p, size_t n, lp2p_mdns_msg *msg);

/* Decode the (possibly compressed) name at p[off]; *end = offset just after the name's bytes at
 * off (pointer targets do not count). 0 or LP2P_ERR_PARSE. */
int lp2p_mdns_name_decode(const uint8_t *p, size_t n, size_t off, lp2p_mdns_name *out, size_t *end);

/* Name from dotted text ("_p2p._udp.local", a trailing '.' allowed). Labels may not contain '.'.
 * 0, or LP2P_ERR_INVAL (empty label, label > 63, name > 255). */
int lp2p_mdns_name_from_text(lp2p_mdns_name *out, const char *text);
/* Name = one label followed by the labels of suffix. 0 or LP2P_ERR_INVAL. */
int lp2p_mdns_name_prepend(lp2p_mdns_name *out, const uint8_t *label, size_t llen, const lp2p_mdns_name *suffix);
/* 1 when equal (ASCII case-insensitive), else 0. */
int lp2p_mdns_name_equal(const lp2p_mdns_name *a, const lp2p_mdns_name *b);
/* First label of a name (pointer into name->wire); its length in *llen (0 for the root name). */
const uint8_t *lp2p_mdns_name_first_label(const lp2p_mdns_name *name, size_t *llen);
/* Dotted text into buf (labels joined with '.', no trailing dot). Length or LP2P_ERR_BUFSIZE. */
int lp2p_mdns_name_to_text(const lp2p_mdns_name *name, char *buf, size_t cap);

/* TXT rdata iteration: start with *off = 0; returns 1 and the next character-string (*s, *slen),
 * 0 at the end, LP2P_ERR_PARSE when a string overruns rdlen. */
int lp2p_mdns_txt_next(const uint8_t *rdata, size_t rdlen, size_t *off, const uint8_t **s, size_t *slen);

/* ---- Builder ----------------------------------------------------------------------------
 * Writes into a caller buffer. Entries must come in section order (questions, answers,
 * authority, additional). Errors are sticky: after the first failure (LP2P_ERR_BUFSIZE when the
 * buffer is full, LP2P_ERR_INVAL on misuse) every call returns it and finish() reports it.
 * With compress set, each name written (owner names and PTR/SRV targets) reuses the longest
 * suffix already written through a pointer (RFC 1035 §4.1.4). */
#define LP2P_MDNS_BUILD_MAX_SUFFIXES 64u
typedef struct lp2p_mdns_builder {
  uint8_t *buf;
  size_t cap, len;
  int compress, err;
  int section;            /* current section */
  size_t rr_start;        /* offset of the open record's RDLENGTH, 0 = none open */
  uint16_t counts[4];
  uint16_t suffix[LP2P_MDNS_BUILD_MAX_SUFFIXES]; /* offsets of name suffixes written */
  uint32_t suffix_hash[LP2P_MDNS_BUILD_MAX_SUFFIXES]; /* their case-folded hashes (checked by decoding) */
  size_t nsuffix;
} lp2p_mdns_builder;

void lp2p_mdns_build_init(lp2p_mdns_builder *b, uint8_t *buf, size_t cap, uint16_t id, uint16_t flags, int compress);
int lp2p_mdns_build_question(lp2p_mdns_builder *b, const lp2p_mdns_name *name, uint16_t type, uint16_t qclass);
/* Opens a record in `section`; add its RDATA with the calls below, then lp2p_mdns_build_rr_end. */
int lp2p_mdns_build_rr_begin(lp2p_mdns_builder *b, int section, const lp2p_mdns_name *name, uint16_t type,
                             uint16_t rclass, uint32_t ttl);
int lp2p_mdns_build_name(lp2p_mdns_builder *b, const lp2p_mdns_name *name);
int lp2p_mdns_build_u16(lp2p_mdns_builder *b, uint16_t v);
int lp2p_mdns_build_bytes(lp2p_mdns_builder *b, const void *p, size_t n);
/* A TXT character-string (n <= 255, else LP2P_ERR_INVAL). */
int lp2p_mdns_build_string(lp2p_mdns_builder *b, const void *p, size_t n);
int lp2p_mdns_build_rr_end(lp2p_mdns_builder *b);
/* Writes the counts; returns the message length or the sticky error. */
int lp2p_mdns_build_finish(lp2p_mdns_builder *b);

#endif
