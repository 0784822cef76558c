#include "jsonio.h"

#include <cmath>
#include <limits>
#include <unordered_set>
#include <vector>

namespace photon::rt {

namespace {
constexpr int kMaxDepth = 512;

struct TooDeep {};
struct DuplicateKey {
  std::string key;
};

/// "line L, column C" of the byte at offset `pos` (0-based) in `text`.
std::string where(const std::string &text, size_t pos) {
  size_t line = 1, col = 1;
  for (size_t k = 0; k < pos && k < text.size(); ++k) {
    if (text[k] == '\n') { ++line; col = 1; } else { ++col; }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(col);
}

/// nlohmann's message without its "[json.exception...] parse error at line L, column C: "
/// prefix (the position is recomputed: nlohmann counts columns from 0 after a newline).
std::string what(const nlohmann::detail::parse_error &e) {
  std::string m = e.what();
  size_t p = m.find(": ");
  if (p != std::string::npos && m.compare(0, 1, "[") == 0) m = m.substr(p + 2);
  if (m.find("expected end of input") != std::string::npos)
    return "unexpected trailing characters after the JSON value (" + m + ")";
  return m;
}
} // namespace

bool parseJson(const std::string &text, Json &out, std::string &error) {
  // The callback sees every value start with its depth; throwing stops the parse before a
  // deeper level is built. It also keeps the keys of each open object (one set per open
  // object, innermost last): a key seen twice in one object is an error, not "the last one
  // wins" (two readers of one file must never see different values).
  std::vector<std::unordered_set<std::string>> keys;
  Json::parser_callback_t limit = [&](int depth, Json::parse_event_t ev, Json &parsed) {
    if ((ev == Json::parse_event_t::object_start || ev == Json::parse_event_t::array_start) &&
        depth >= kMaxDepth)
      throw TooDeep();
    if (ev == Json::parse_event_t::object_start) keys.emplace_back();
    else if (ev == Json::parse_event_t::object_end && !keys.empty()) keys.pop_back();
    else if (ev == Json::parse_event_t::key && !keys.empty()) {
      const std::string &k = parsed.get_ref<const std::string &>();
      if (!keys.back().insert(k).second) throw DuplicateKey{k};
    }
    return true;
  };
  try {
    out = Json::parse(text, limit, /*allow_exceptions=*/true, /*ignore_comments=*/false);
    return true;
  } catch (const TooDeep &) {
    error = "nesting deeper than " + std::to_string(kMaxDepth) + " levels";
  } catch (const DuplicateKey &d) {
    std::string shown = d.key.size() > 64 ? d.key.substr(0, 64) + "..." : d.key;
    error = "duplicate key \"" + shown + "\" in one object (each key may appear once)";
  } catch (const Json::parse_error &e) {
    size_t pos = e.byte > 0 ? e.byte - 1 : 0;
    error = where(text, pos) + ": " + what(e);
  } catch (const Json::exception &e) {
    error = std::string("line 1, column 1: ") + e.what();
  }
  out = Json();
  return false;
}

bool jsonIsInteger(const Json &v) {
  if (v.is_number_unsigned())
    return v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (v.is_number_integer()) return true;
  if (v.is_number_float()) {
    double d = v.get<double>();
    return std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e18;
  }
  return false;
}

int64_t jsonInt(const Json &v) {
  if (v.is_number_unsigned()) return static_cast<int64_t>(v.get<uint64_t>());
  if (v.is_number_integer()) return v.get<int64_t>();
  return static_cast<int64_t>(v.get<double>());
}

const Json *jsonGet(const Json &v, const std::string &key) {
  if (!v.is_object()) return nullptr;
  auto it = v.find(key);
  return it == v.end() ? nullptr : &*it;
}

const char *jsonKindName(const Json &v) {
  switch (v.type()) {
  case Json::value_t::null: return "null";
  case Json::value_t::boolean: return "boolean";
  case Json::value_t::number_integer:
  case Json::value_t::number_unsigned:
  case Json::value_t::number_float: return "number";
  case Json::value_t::string: return "string";
  case Json::value_t::array: return "array";
  case Json::value_t::object: return "object";
  default: return "?";
  }
}

} // namespace photon::rt
