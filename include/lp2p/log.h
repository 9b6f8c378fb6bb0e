/* lp2p/log.h - the library's diagnostic log.
 *
 * The level comes from the environment variable LP2P_LOG (error, warn, info,
 * debug; default warn), read once on first use, or from lp2p_log_set_level().
 * By default lines go to stderr as "lp2p <level> <module>: <message>".
 * A handler installed with lp2p_log_set_handler() receives them instead; the
 * message pointer is valid only during the call. Thread-safe to emit; set the
 * handler before starting any swarm. */
#ifndef LP2P_LOG_H
#define LP2P_LOG_H
#include "lp2p/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lp2p_log_level {
  LP2P_LOG_ERROR = 0,
  LP2P_LOG_WARN = 1,
  LP2P_LOG_INFO = 2,
  LP2P_LOG_DEBUG = 3
} lp2p_log_level;

typedef void (*lp2p_log_handler)(lp2p_log_level level, const char *module, const char *msg, void *user);

LP2P_EXTERN void lp2p_log_set_level(lp2p_log_level level);
LP2P_EXTERN lp2p_log_level lp2p_log_get_level(void);
/* NULL restores the stderr writer. */
LP2P_EXTERN void lp2p_log_set_handler(lp2p_log_handler h, void *user);
LP2P_EXTERN void lp2p_log(lp2p_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif
#endif
