// photon-serve's request parsing and validation (docs/runtime.md, "The server"): the JSON
// body of POST /v1/completions and /v1/chat/completions turned into a GenRequest (prompt
// tokens, sampling, stop strings, n, seed, streaming), every invalid field answered with an
// OpenAI-style error (HttpError: status, message, type, param, code).
#pragma once

#include "photon/photon.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace photon_serve {

using json = nlohmann::json;

// JSON text of `j`, invalid UTF-8 replaced (generated text may end inside a character).
std::string dumpJson(const json &j);

// An error answer: thrown by the parsing and by the engine's refusals, sent by the server.
struct HttpError {
  int status;
  std::string message, type, param, code;
};

HttpError badRequest(const std::string &msg, const std::string &param = "");

// The body of an error answer, {"error": {message, type, param, code}}.
json errorJson(const HttpError &e);

struct GenRequest {
  bool chat = false;
  std::vector<int32_t> prompt;
  photon::Sampling sampling;
  std::vector<std::string> stop;
  int n = 1;
  uint64_t seed = 0;
  bool stream = false, includeUsage = false, ignoreEos = false;
  int maxTokens = 16;
};

// What a request is checked against: the served model and the server's limits.
struct RequestContext {
  const photon::Model &model; // tokenizes text prompts
  const photon_model_info &info;
  const std::string &modelName;
  int defaultMaxTokens;
  int maxTokensLimit;
};

// Parses and validates the body of a completion (`chat` false) or chat completion request;
// throws HttpError.
GenRequest parseRequest(const std::string &bodyText, bool chat, const RequestContext &ctx);

} // namespace photon_serve
