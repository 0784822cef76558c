// The pieces of photon-serve's answers (docs/runtime.md, "The server"): the text of one
// sample as it grows (cut at a stop string, held back while it could still begin one or ends
// inside a UTF-8 character, so that streamed text is never taken back), the OpenAI and
// photon finish reasons, and the usage object.
#pragma once

#include "request.h"

#include "photon/photon.hpp"

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

namespace photon_serve {

// Bytes of a complete UTF-8 prefix of `s` (a trailing incomplete sequence is held back).
size_t completeUtf8(const std::string &s);

// OpenAI's finish_reason of `f` (nullptr while the sample runs).
const char *finishReason(photon_finish f);
// photon's finer finish reason (photon_finish in the answers).
const char *photonFinish(photon_finish f);

// Text of one sample as it grows: bytes of the tokens, cut at the first stop string on
// finish, and held back while its end could still begin a stop string (or is an incomplete
// UTF-8 character) so that streamed text never has to be taken back.
struct TextState {
  std::string bytes;
  size_t tokensSeen = 0, sent = 0;
  void add(const photon::Model &model, const std::vector<int32_t> &toks) {
    for (size_t i = tokensSeen; i < toks.size(); ++i) bytes += model.tokenBytes(toks[i]);
    tokensSeen = toks.size();
  }
  void finish(photon_finish f, const std::vector<std::string> &stop) {
    if (f != PHOTON_FINISH_STOP) return;
    size_t best = std::string::npos;
    for (const auto &s : stop) best = std::min(best, bytes.find(s));
    if (best == std::string::npos) {
      // The engine reports tokens as they are final, so a match that began in tokens already
      // reported leaves its beginning here: the longest end of the text that starts a stop
      // string is that beginning.
      for (const auto &s : stop)
        for (size_t k = std::min(s.size() - 1, bytes.size()); k > 0; --k)
          if (bytes.compare(bytes.size() - k, k, s, 0, k) == 0) {
            best = std::min(best, bytes.size() - k);
            break;
          }
    }
    if (best != std::string::npos) bytes.resize(std::max(best, sent));
  }
  // The bytes that may be sent now.
  std::string take(bool final, const std::vector<std::string> &stop) {
    size_t end = bytes.size();
    if (!final) {
      for (const auto &s : stop)
        for (size_t k = std::min(s.size() - 1, bytes.size()); k > 0; --k)
          if (bytes.compare(bytes.size() - k, k, s, 0, k) == 0) {
            end = std::min(end, bytes.size() - k);
            break;
          }
      end = std::min(end, completeUtf8(bytes.substr(0, end)));
    }
    if (end <= sent) return "";
    std::string out = bytes.substr(sent, end - sent);
    sent = end;
    return out;
  }
};

json usageJson(size_t promptTokens, size_t completion);

} // namespace photon_serve
