/* tests/sansio/probe_forbidden.c - compiled with the engines' include path and
 * flags, once per forbidden header (LP2P_PROBE_HEADER, e.g. <uv.h>): each
 * build must fail with the guard's "sans-IO engine" error. */
#include LP2P_PROBE_HEADER

int lp2p_sansio_probe(void);
int lp2p_sansio_probe(void) { return 0; }
