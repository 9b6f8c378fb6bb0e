/* lp2p/uv.h - attach a swarm to an application's libuv loop.
 *
 * The only public lp2p header that includes <uv.h>. Apps that run their own
 * uv_loop_t create the swarm here instead of with lp2p_swarm_new(); the swarm
 * then adds its handles (TCP, timers, one async for lp2p_swarm_post, one idle
 * used to flush deferred work) to that loop and never runs or closes the loop
 * itself. Its async handle is unreferenced, so an otherwise idle swarm does not
 * keep uv_run(UV_RUN_DEFAULT) alive; listeners and connections do.
 *
 * Shutdown: lp2p_swarm_free() closes the swarm's handles; memory is released
 * from their close callbacks, so run the loop (uv_run(loop, UV_RUN_DEFAULT) or
 * until it returns 0) before uv_loop_close(loop). */
#ifndef LP2P_UV_H
#define LP2P_UV_H
#include <uv.h>

#include "lp2p/swarm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Like lp2p_swarm_new() but on loop (borrowed: must outlive the swarm's
 * release, see above). Call from the thread that runs loop. */
LP2P_EXTERN int lp2p_swarm_new_uv(lp2p_swarm **out, const lp2p_swarm_config *cfg, uv_loop_t *loop,
                                  const lp2p_mem *mem);
/* The loop the swarm runs on (its own or the app's). */
LP2P_EXTERN uv_loop_t *lp2p_swarm_uv_loop(const lp2p_swarm *sw);

#ifdef __cplusplus
}
#endif
#endif /* LP2P_UV_H */
