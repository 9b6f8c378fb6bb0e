/* lp2p/common.h - things every lp2p header shares: export macro, error codes,
 * the injectable allocator and the time type.
 *
 * Conventions used by every lp2p header:
 *  - Functions return 0 (LP2P_OK) or a negative LP2P_ERR_* code; functions
 *    that return a length return it as a non-negative value or an error.
 *  - Objects are opaque: int lp2p_x_new(lp2p_x **out, ...) / void lp2p_x_free(lp2p_x *),
 *    and _free(NULL) does nothing.
 *  - Each header comment says who owns what and how long pointers stay valid.
 *  - Engines (multistream-select, Noise, Yamux, codecs) never read a clock:
 *    time is passed in as lp2p_tstamp (monotonic milliseconds).
 */
#ifndef LP2P_COMMON_H
#define LP2P_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(LP2P_BUILDING)
#define LP2P_EXTERN __attribute__((visibility("default")))
#else
#define LP2P_EXTERN
#endif

/* Error codes. One list produces the enum, lp2p_strerror() and lp2p_err_name().
 * Codes at or below LP2P_ERR_FATAL mean the object that returned them is dead:
 * only its _free may be called. */
#define LP2P_ERROR_MAP(X)                                                        \
  X(INVAL, -101, "invalid argument")                                             \
  X(AGAIN, -102, "more input needed")                                            \
  X(BUFSIZE, -103, "output buffer too small")                                    \
  X(PARSE, -104, "malformed input")                                              \
  X(VARINT, -105, "malformed varint")                                            \
  X(MULTIBASE, -106, "malformed or unsupported multibase string")                \
  X(MULTIHASH, -107, "malformed or unsupported multihash")                       \
  X(CID, -108, "malformed or unsupported CID")                                   \
  X(MULTIADDR, -109, "malformed multiaddr")                                      \
  X(KEY_TYPE, -110, "unsupported key type")                                      \
  X(KEY, -111, "malformed key")                                                  \
  X(SIGNATURE, -112, "signature verification failed")                            \
  X(PEER_ID, -113, "malformed peer id")                                          \
  X(IO, -114, "I/O error")                                                       \
  X(NOT_FOUND, -115, "not found")                                                \
  X(EXISTS, -116, "already exists")                                              \
  X(STATE, -117, "operation not valid in the current state")                     \
  X(PROTO, -120, "protocol violation by peer")                                   \
  X(TOO_LARGE, -121, "message exceeds size limit")                               \
  X(UNSUPPORTED, -122, "protocol not supported")                                 \
  X(PEER_ID_MISMATCH, -123, "remote peer id mismatch")                           \
  X(DECRYPT, -124, "authentication failed (decryption)")                         \
  X(NONCE_EXHAUSTED, -125, "nonce exhausted")                                    \
  X(HANDSHAKE, -126, "handshake failed")                                         \
  X(LIMIT, -127, "resource limit reached")                                       \
  X(WINDOW, -128, "flow-control window exceeded")                                \
  X(CLOSED, -130, "closed")                                                      \
  X(RESET, -131, "stream reset")                                                 \
  X(EOF, -132, "end of stream")                                                  \
  X(TIMEOUT, -133, "timed out")                                                  \
  X(GOAWAY, -134, "session going away")                                          \
  X(CANCELED, -135, "canceled")                                                  \
  X(NOT_CONNECTED, -136, "not connected")                                        \
  X(DENIED, -137, "denied by policy (connection gating)")                        \
  X(CONNREFUSED, -140, "connection refused")                                     \
  X(UNREACHABLE, -141, "address unreachable")                                    \
  X(CONNRESET, -142, "connection reset by peer")                                 \
  X(ADDRINUSE, -143, "address in use")                                           \
  X(DNS, -144, "DNS resolution failed")                                          \
  X(DIAL, -145, "all dial attempts failed")                                      \
  X(TRANSPORT, -146, "transport error")                                          \
  X(FATAL, -500, "fatal error threshold")                                        \
  X(NOMEM, -501, "out of memory")                                                \
  X(CALLBACK, -502, "user callback failed")                                      \
  X(INTERNAL, -503, "internal error")

typedef enum lp2p_error {
  LP2P_OK = 0,
#define LP2P__ERR_ENUM(name, value, text) LP2P_ERR_##name = value,
  LP2P_ERROR_MAP(LP2P__ERR_ENUM)
#undef LP2P__ERR_ENUM
} lp2p_error;

/* Human-readable text for an error code; never NULL, static storage. */
LP2P_EXTERN const char *lp2p_strerror(int err);
/* Symbolic name ("LP2P_ERR_PROTO"); never NULL, static storage. */
LP2P_EXTERN const char *lp2p_err_name(int err);
/* Non-zero when err <= LP2P_ERR_FATAL. */
LP2P_EXTERN int lp2p_is_fatal(int err);

/* Monotonic time in milliseconds, always supplied by the caller. */
typedef uint64_t lp2p_tstamp;
#define LP2P_TSTAMP_NEVER UINT64_MAX

/* Injectable allocator. Passing NULL wherever an lp2p_mem is accepted means
 * libc. The struct is copied by the object that receives it (not retained).
 * Engines route every allocation through it, which lets tests fail the n-th
 * allocation. */
typedef struct lp2p_mem {
  void *(*malloc_fn)(size_t size, void *user);
  void *(*realloc_fn)(void *ptr, size_t size, void *user);
  void (*free_fn)(void *ptr, void *user);
  void *user;
} lp2p_mem;

/* The libc allocator as an lp2p_mem (static storage). */
LP2P_EXTERN const lp2p_mem *lp2p_mem_default(void);

/* Library version string, e.g. "0.1.0". */
LP2P_EXTERN const char *lp2p_version(void);

#ifdef __cplusplus
}
#endif
#endif /* LP2P_COMMON_H */
