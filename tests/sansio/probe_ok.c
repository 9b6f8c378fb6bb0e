/* tests/sansio/probe_ok.c - compiled with the engines' include path and flags
 * (target sansio_probe_ok): every header an engine legitimately includes must
 * still be reachable through the sans-IO guard. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>
#include <protobuf-c/protobuf-c.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <tomcrypt.h>
#include <unistd.h>

#include "core/mem.h"
#include "lp2p/common.h"
#include "lp2p/mss.h"
#include "lp2p/noise.h"
#include "lp2p/yamux.h"

int lp2p_sansio_probe_ok(void);
int lp2p_sansio_probe_ok(void) { return 0; }
