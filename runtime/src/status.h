// Internal status type of libphoton: a code from photon.h plus a message that says what
// went wrong and what to do. The runtime reports errors through Status, not exceptions;
// what the standard library or nlohmann-json may throw is caught in jsonio.cpp and, for
// everything else, at the C API boundary (capi.cpp).
#ifndef PHOTON_RUNTIME_STATUS_H
#define PHOTON_RUNTIME_STATUS_H

#include "photon/photon.h"

#include <string>
#include <utility>

namespace photon::rt {

class Status {
public:
  Status() = default;
  Status(photon_status code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status ok() { return Status(); }
  bool isOk() const { return code_ == PHOTON_OK; }
  explicit operator bool() const { return isOk(); }
  photon_status code() const { return code_; }
  const std::string &message() const { return message_; }
  /// Prefixes the message with context ("loading model.photon: ...").
  Status &prefix(const std::string &context) {
    if (!isOk()) message_ = context + ": " + message_;
    return *this;
  }

private:
  photon_status code_ = PHOTON_OK;
  std::string message_;
};

inline Status error(photon_status code, std::string message) {
  return Status(code, std::move(message));
}

#define PHOTON_RETURN_IF_ERROR(expr)                                                           \
  do {                                                                                         \
    ::photon::rt::Status _st = (expr);                                                             \
    if (!_st.isOk()) return _st;                                                               \
  } while (0)

/// "3.1 MiB", "512 B", "2.0 GiB".
std::string formatBytes(double bytes);

} // namespace photon::rt

#endif
