/* log.c - level filter and sink for lp2p_log(). */
#include "lp2p/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_level = -1;
static lp2p_log_handler g_handler;
static void *g_user;

static const char *level_name(lp2p_log_level l) {
  static const char *names[] = {"error", "warn", "info", "debug"};
  return (unsigned)l < 4 ? names[l] : "?";
}

lp2p_log_level lp2p_log_get_level(void) {
  if (g_level < 0) {
    const char *e = getenv("LP2P_LOG");
    int lvl = LP2P_LOG_WARN;
    if (e) {
      for (int i = 0; i < 4; i++)
        if (!strcmp(e, level_name((lp2p_log_level)i))) lvl = i;
    }
    g_level = lvl;
  }
  return (lp2p_log_level)g_level;
}

void lp2p_log_set_level(lp2p_log_level level) { g_level = (int)level; }

void lp2p_log_set_handler(lp2p_log_handler h, void *user) {
  g_handler = h;
  g_user = user;
}

void lp2p_log(lp2p_log_level level, const char *module, const char *fmt, ...) {
  if ((int)level > (int)lp2p_log_get_level()) return;
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (g_handler) {
    g_handler(level, module, buf, g_user);
    return;
  }
  fprintf(stderr, "lp2p %s %s: %s\n", level_name(level), module, buf);
}
