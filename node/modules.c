/* node/modules.c - the features of `lp2p-node listen` (node/module.h): one
 * line per module, in the order their hooks run. */
#include <stddef.h>

#include "module.h"

extern const node_module node_mod_mdns;
extern const node_module node_mod_kad;
extern const node_module node_mod_msg;
extern const node_module node_mod_pubsub;
extern const node_module node_mod_pair;

const node_module *const node_modules[] = {
    &node_mod_mdns,
    &node_mod_kad,
    &node_mod_msg,
    &node_mod_pubsub,
    &node_mod_pair,
    NULL,
};
