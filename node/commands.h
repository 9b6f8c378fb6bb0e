/* node/commands.h - the lp2p-node subcommands (one node/cmd_<name>.c each).
 * Add a new one here and to the table in node/main.c. */
#ifndef LP2P_NODE_COMMANDS_H
#define LP2P_NODE_COMMANDS_H
#include "cli.h"

int cmd_id(const cli_command *cmd, int argc, char **argv);
int cmd_listen(const cli_command *cmd, int argc, char **argv);
int cmd_ping(const cli_command *cmd, int argc, char **argv);
int cmd_identify(const cli_command *cmd, int argc, char **argv);
int cmd_perf(const cli_command *cmd, int argc, char **argv);
int cmd_kad(const cli_command *cmd, int argc, char **argv);
int cmd_send(const cli_command *cmd, int argc, char **argv);
int cmd_send_file(const cli_command *cmd, int argc, char **argv);
int cmd_inbox(const cli_command *cmd, int argc, char **argv);
int cmd_pair(const cli_command *cmd, int argc, char **argv);
int cmd_devices(const cli_command *cmd, int argc, char **argv);
int cmd_unpair(const cli_command *cmd, int argc, char **argv);

#endif
