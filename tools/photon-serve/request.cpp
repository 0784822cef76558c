// photon-serve's request parsing and validation (request.h).
#include "request.h"

#include <atomic>
#include <random>

namespace photon_serve {

std::string dumpJson(const json &j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

HttpError badRequest(const std::string &msg, const std::string &param) {
  return {400, msg, "invalid_request_error", param, ""};
}

json errorJson(const HttpError &e) {
  json err = {{"message", e.message},
              {"type", e.type},
              {"param", e.param.empty() ? json(nullptr) : json(e.param)},
              {"code", e.code.empty() ? json(nullptr) : json(e.code)}};
  return json{{"error", err}};
}

namespace {

double number(const json &body, const char *key, double def, double lo, double hi) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return def;
  if (!it->is_number())
    throw badRequest(std::string("'") + key + "' must be a number", key);
  double v = it->get<double>();
  if (!(v >= lo && v <= hi))
    throw badRequest(std::string("'") + key + "' is " + it->dump() + "; it must be in [" +
                         json(lo).dump() + ", " + json(hi).dump() + "]",
                     key);
  return v;
}

int64_t integer(const json &body, const char *key, int64_t def, int64_t lo, int64_t hi) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return def;
  if (!it->is_number_integer())
    throw badRequest(std::string("'") + key + "' must be an integer", key);
  int64_t v = it->get<int64_t>();
  if (v < lo || v > hi)
    throw badRequest(std::string("'") + key + "' is " + std::to_string(v) + "; it must be in [" +
                         std::to_string(lo) + ", " + std::to_string(hi) + "]",
                     key);
  return v;
}

std::vector<int32_t> tokenize(const RequestContext &ctx, const std::string &text) {
  try {
    return ctx.model.tokenize(text);
  } catch (const photon::Error &e) {
    throw badRequest(std::string("the prompt cannot be tokenized: ") + e.what(), "prompt");
  }
}

} // namespace

GenRequest parseRequest(const std::string &bodyText, bool chat, const RequestContext &ctx) {
  json body;
  try {
    body = json::parse(bodyText);
  } catch (const json::parse_error &e) {
    throw badRequest(std::string("the body is not valid JSON: ") + e.what());
  }
  if (!body.is_object()) throw badRequest("the body must be a JSON object");
  GenRequest r;
  r.chat = chat;
  if (body.contains("model") && !body["model"].is_string())
    throw badRequest("'model' must be a string", "model");
  if (body.contains("model") && body["model"].get<std::string>() != ctx.modelName)
    throw HttpError{404, "the model '" + body["model"].get<std::string>() +
                             "' does not exist; this server serves '" + ctx.modelName + "'",
                    "invalid_request_error", "model", "model_not_found"};
  if (chat) {
    auto it = body.find("messages");
    if (it == body.end() || !it->is_array() || it->empty())
      throw badRequest("'messages' must be a non-empty array of {role, content}", "messages");
    std::string text;
    for (size_t i = 0; i < it->size(); ++i) {
      const json &m = (*it)[i];
      std::string where = "messages[" + std::to_string(i) + "]";
      if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
        throw badRequest(where + " needs a string 'role'", where);
      std::string role = m["role"];
      if (role != "system" && role != "user" && role != "assistant" && role != "developer")
        throw badRequest(where + ".role '" + role + "' is not system, developer, user or assistant",
                         where + ".role");
      std::string content;
      const json &c = m.contains("content") ? m["content"] : json(nullptr);
      if (c.is_string()) content = c;
      else if (c.is_array()) { // [{type: "text", text: ...}]
        for (const auto &part : c) {
          if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") ||
              !part["text"].is_string())
            throw badRequest(where + ".content: only text parts are supported", where + ".content");
          content += part["text"].get<std::string>();
        }
      } else {
        throw badRequest(where + ".content must be a string or a list of text parts",
                         where + ".content");
      }
      text += role + ": " + content + "\n";
    }
    text += "assistant:";
    r.prompt = tokenize(ctx, text);
    r.stop.push_back("\nuser:");
  } else {
    auto it = body.find("prompt");
    if (it == body.end()) throw badRequest("'prompt' is required", "prompt");
    const json *p = &*it;
    if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) p = &(*p)[0];
    if (p->is_string()) {
      r.prompt = tokenize(ctx, p->get<std::string>());
    } else if (p->is_array() && !p->empty() && (*p)[0].is_number_integer()) {
      for (const auto &t : *p) {
        if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= ctx.info.vocab)
          throw badRequest("prompt token " + t.dump() + " is not a token id in [0, " +
                               std::to_string(ctx.info.vocab) + ")",
                           "prompt");
        r.prompt.push_back(static_cast<int32_t>(t.get<int64_t>()));
      }
    } else {
      throw badRequest("'prompt' must be a string, a list of one string, or a list of token "
                       "ids (one prompt per request)",
                       "prompt");
    }
  }
  if (ctx.info.family == PHOTON_FAMILY_VANILLA && r.prompt.empty())
    throw badRequest("the prompt is empty; this model needs at least one token", "prompt");
  const char *maxKey = chat && body.contains("max_completion_tokens") ? "max_completion_tokens"
                                                                      : "max_tokens";
  r.maxTokens = static_cast<int>(integer(body, maxKey, ctx.defaultMaxTokens, 1, ctx.maxTokensLimit));
  double temperature = number(body, "temperature", 1.0, 0.0, 2.0);
  double topP = number(body, "top_p", 1.0, 0.0, 1.0);
  if (topP <= 0) throw badRequest("'top_p' must be > 0", "top_p");
  int64_t topK = integer(body, "top_k", 0, 0, 1 << 20);
  double rep = number(body, "repetition_penalty", 1.0, 0.01, 100.0);
  r.n = static_cast<int>(integer(body, "n", 1, 1, 8));
  if (body.contains("seed") && !body["seed"].is_null()) {
    if (!body["seed"].is_number_integer()) throw badRequest("'seed' must be an integer", "seed");
    r.seed = static_cast<uint64_t>(body["seed"].get<int64_t>());
  } else {
    static std::atomic<uint64_t> counter{0};
    r.seed = std::random_device{}() ^ (counter.fetch_add(1) * 0x9E3779B97F4A7C15ull);
  }
  if (body.contains("stop") && !body["stop"].is_null()) {
    const json &s = body["stop"];
    if (s.is_string()) {
      if (!s.get<std::string>().empty()) r.stop.push_back(s);
    } else if (s.is_array() && s.size() <= 4) {
      for (const auto &x : s) {
        if (!x.is_string()) throw badRequest("'stop' entries must be strings", "stop");
        if (!x.get<std::string>().empty()) r.stop.push_back(x);
      }
    } else {
      throw badRequest("'stop' must be a string or a list of up to 4 strings", "stop");
    }
  }
  if (body.contains("stream") && !body["stream"].is_null()) {
    if (!body["stream"].is_boolean()) throw badRequest("'stream' must be a boolean", "stream");
    r.stream = body["stream"];
  }
  if (body.contains("stream_options") && body["stream_options"].is_object())
    r.includeUsage = body["stream_options"].value("include_usage", false);
  if (body.contains("ignore_eos") && body["ignore_eos"].is_boolean()) r.ignoreEos = body["ignore_eos"];
  r.sampling.temperature(static_cast<float>(temperature))
      .topP(static_cast<float>(topP))
      .topK(static_cast<int32_t>(topK))
      .repetitionPenalty(static_cast<float>(rep))
      .maxTokens(r.maxTokens)
      .stop(r.stop)
      .ignoreEos(r.ignoreEos);
  return r;
}

} // namespace photon_serve
