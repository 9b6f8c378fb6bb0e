/* error.c - the error table: lp2p_strerror, lp2p_err_name, lp2p_is_fatal. */
#include "lp2p/common.h"

const char *lp2p_strerror(int err) {
  switch (err) {
  case LP2P_OK:
    return "success";
#define LP2P__ERR_TEXT(name, value, text) \
  case value:                            \
    return text;
    LP2P_ERROR_MAP(LP2P__ERR_TEXT)
#undef LP2P__ERR_TEXT
  default:
    return "unknown error";
  }
}

const char *lp2p_err_name(int err) {
  switch (err) {
  case LP2P_OK:
    return "LP2P_OK";
#define LP2P__ERR_NAME(name, value, text) \
  case value:                            \
    return "LP2P_ERR_" #name;
    LP2P_ERROR_MAP(LP2P__ERR_NAME)
#undef LP2P__ERR_NAME
  default:
    return "LP2P_ERR_UNKNOWN";
  }
}

int lp2p_is_fatal(int err) { return err <= LP2P_ERR_FATAL; }

const char *lp2p_version(void) { return LP2P_VERSION_STRING; }
