/* cmake/sansio-guard/sys/socket.h - placed first on the include path of the sans-IO
 * engines (core/, noise/, muxer/, kad/engine/, mdns/engine/) by CMakeLists.txt:
 * engines take bytes, events and the current time from the caller and never
 * open sockets or run an event loop. Only the runtime (swarm/, transport/)
 * may include <sys/socket.h>. */
#error "sans-IO engine: <sys/socket.h> is forbidden here (runtime only: swarm/, transport/)"
