// photon-serve's socket handling around cpp-httplib: see connections.h.
#include "connections.h"

#include <arpa/inet.h>
#include <atomic>
#include <cstdlib>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

namespace photon_serve {
namespace {
std::atomic<int> listeningFd{-1};

int localPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr *>(&ss), &len) != 0) return -1;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in *>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6 *>(&ss)->sin6_port);
  return -1;
}
} // namespace

void listeningSocketOptions(int fd) {
  int yes = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  listeningFd.store(fd);
}

bool raiseBacklog(int backlog) {
  int fd = listeningFd.load();
  return fd >= 0 && listen(fd, backlog) == 0;
}

int shutdownIdleConnections(int port) {
  DIR *dir = opendir("/proc/self/fd");
  if (!dir) return 0;
  int shut = 0;
  while (dirent *e = readdir(dir)) {
    char *end = nullptr;
    long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end || fd == dirfd(dir)) continue;
    struct stat st;
    if (fstat(static_cast<int>(fd), &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    int type = 0, listening = 0;
    socklen_t len = sizeof type;
    if (getsockopt(static_cast<int>(fd), SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM)
      continue;
    len = sizeof listening;
    if (getsockopt(static_cast<int>(fd), SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || listening)
      continue;
    if (localPort(static_cast<int>(fd)) != port) continue;
    if (shutdown(static_cast<int>(fd), SHUT_RD) == 0) ++shut;
  }
  closedir(dir);
  return shut;
}

} // namespace photon_serve
