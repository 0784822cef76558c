// JSON for photon-bench through nlohmann::json (Debian nlohmann-json3-dev): reading
// manifest.json's cost_model and run_peers.py's output, and writing the result file with a
// streaming interface (beginObj/key/value/endObj) that builds an ordered_json.
#ifndef PHOTON_BENCH_BENCHJSON_H
#define PHOTON_BENCH_BENCHJSON_H

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace bench {

using Json = nlohmann::ordered_json;

/// Parses `text`; on failure false with `err` = "JSON error at byte N: what".
inline bool parseJson(const std::string &text, Json &out, std::string &err) {
  try {
    out = Json::parse(text);
    return true;
  } catch (const Json::parse_error &e) {
    err = "JSON error at byte " + std::to_string(e.byte) + ": " + e.what();
  }
  return false;
}

/// Member `k` of object `v`; nullptr when absent or `v` is not an object.
inline const Json *jget(const Json *v, const std::string &k) {
  if (!v || !v->is_object()) return nullptr;
  auto it = v->find(k);
  return it == v->end() ? nullptr : &*it;
}
/// Number member `k` of `v`, or `dflt`.
inline double jnumber(const Json *v, const std::string &k, double dflt = 0) {
  const Json *x = jget(v, k);
  return x && x->is_number() ? x->get<double>() : dflt;
}
/// The string `v`, or "" when it is not one.
inline std::string jstr(const Json *v) {
  return v && v->is_string() ? v->get<std::string>() : std::string();
}

/// Builds one JSON document value by value; non-finite numbers are written as null,
/// integral ones without a fraction.
class JWriter {
 public:
  void beginObj() { open(Json::object()); }
  void endObj() { stack_.pop_back(); }
  void beginArr() { open(Json::array()); }
  void endArr() { stack_.pop_back(); }
  void key(const std::string &k) { key_ = k; }
  void value(double v) {
    if (!std::isfinite(v)) put(nullptr);
    else if (v == std::floor(v) && std::fabs(v) < 9e15) put(static_cast<int64_t>(v));
    else put(v);
  }
  void value(const std::string &s) { put(s); }
  void value(const char *s) { put(std::string(s)); }
  void value(int v) { value(static_cast<double>(v)); }
  void value(long v) { value(static_cast<double>(v)); }
  void value(long long v) { value(static_cast<double>(v)); }
  void value(unsigned long v) { value(static_cast<double>(v)); }
  void value(unsigned long long v) { value(static_cast<double>(v)); }
  void value(bool b) { put(b); }
  void value(const Json &j) { put(j); }
  void null() { put(nullptr); }
  template <class T> void kv(const std::string &k, const T &v) { key(k); value(v); }
  /// The document, indented by one space per level; invalid UTF-8 becomes U+FFFD.
  std::string str() const { return root_.dump(1, ' ', false, Json::error_handler_t::replace); }

 private:
  Json root_;
  std::vector<Json *> stack_; // the open containers, innermost last
  std::string key_;
  Json *put(Json v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    Json &top = *stack_.back();
    if (top.is_array()) {
      top.push_back(std::move(v));
      return &top.back();
    }
    Json &slot = top[key_];
    slot = std::move(v);
    return &slot;
  }
  void open(Json container) { stack_.push_back(put(std::move(container))); }
};

} // namespace bench

#endif
