// photon-serve's socket handling around cpp-httplib (docs/runtime.md, "The server").
//
// cpp-httplib 0.11 (Debian's) listens with a backlog of 5 and, on a new connection, waits for
// the first request only as long as the keep-alive timeout; on shutdown it joins every worker,
// including those waiting on an idle keep-alive connection. These helpers close those gaps
// from outside the library: a deeper accept queue, and a way to wake idle connections.
#pragma once

#include <cstdint>

namespace photon_serve {

// Socket options for the listening socket (httplib::Server::set_socket_options): what
// httplib's defaults set (SO_REUSEADDR), and the descriptor remembered for raiseBacklog.
void listeningSocketOptions(int fd);

// Re-arms listen() on the remembered listening socket with `backlog` pending connections (the
// kernel caps it at net.core.somaxconn). Returns false when no socket was remembered or
// listen() failed.
bool raiseBacklog(int backlog);

// Shuts down the reading side of every connected TCP socket of this process whose local port
// is `port` (the server's side of its clients' connections). A worker waiting for the next
// request on an idle keep-alive connection then sees end of file and closes it; responses
// being written are not affected. Returns the number of sockets shut.
int shutdownIdleConnections(int port);

} // namespace photon_serve
