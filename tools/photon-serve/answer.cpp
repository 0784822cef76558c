// The pieces of photon-serve's answers (answer.h).
#include "answer.h"

namespace photon_serve {

size_t completeUtf8(const std::string &s) {
  size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    unsigned char c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue; // continuation byte: look further back
    size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return len > back ? n - back : n;
  }
  return n;
}

const char *finishReason(photon_finish f) {
  switch (f) {
  case PHOTON_FINISH_LENGTH:
  case PHOTON_FINISH_CONTEXT: return "length";
  case PHOTON_FINISH_STOP:
  case PHOTON_FINISH_EOS: return "stop";
  case PHOTON_FINISH_CANCELLED: return "cancelled";
  case PHOTON_FINISH_NONE: break;
  }
  return nullptr;
}
const char *photonFinish(photon_finish f) {
  switch (f) {
  case PHOTON_FINISH_LENGTH: return "length";
  case PHOTON_FINISH_CONTEXT: return "context_limit";
  case PHOTON_FINISH_STOP: return "stop_string";
  case PHOTON_FINISH_EOS: return "eos";
  case PHOTON_FINISH_CANCELLED: return "cancelled";
  case PHOTON_FINISH_NONE: break;
  }
  return "none";
}

json usageJson(size_t promptTokens, size_t completion) {
  return {{"prompt_tokens", promptTokens},
          {"completion_tokens", completion},
          {"total_tokens", promptTokens + completion}};
}

} // namespace photon_serve
