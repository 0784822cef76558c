// A small, strict JSON parser (RFC 8259) for manifest.json and tokenizer vocabularies.
// No external dependencies; errors carry line and column.
#ifndef PHOTON_RUNTIME_JSON_H
#define PHOTON_RUNTIME_JSON_H

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace photon {
namespace json {

class Value {
public:
  enum class Kind { Null, Bool, Number, String, Array, Object };

  Value() = default;
  Kind kind() const { return kind_; }
  bool isNull() const { return kind_ == Kind::Null; }
  bool isBool() const { return kind_ == Kind::Bool; }
  bool isNumber() const { return kind_ == Kind::Number; }
  bool isString() const { return kind_ == Kind::String; }
  bool isArray() const { return kind_ == Kind::Array; }
  bool isObject() const { return kind_ == Kind::Object; }
  /// True if the number is integral and fits in int64 (written without fraction/exponent
  /// or with an integral value).
  bool isInteger() const { return kind_ == Kind::Number && integral_; }

  bool asBool() const { return b_; }
  double asDouble() const { return num_; }
  int64_t asInt() const { return int_; }
  const std::string &asString() const { return str_; }
  const std::vector<Value> &items() const { return items_; }
  const std::vector<std::pair<std::string, Value>> &members() const { return members_; }
  size_t size() const { return kind_ == Kind::Array ? items_.size() : members_.size(); }
  const Value &operator[](size_t i) const { return items_[i]; }
  /// Member lookup; nullptr when absent or not an object.
  const Value *get(const std::string &key) const;

  static const char *kindName(Kind k);

  // Construction (used by the parser and by tests).
  static Value makeNull() { return Value(); }
  static Value makeBool(bool b) { Value v; v.kind_ = Kind::Bool; v.b_ = b; return v; }
  static Value makeNumber(double d, bool integral, int64_t i) {
    Value v; v.kind_ = Kind::Number; v.num_ = d; v.integral_ = integral; v.int_ = i; return v;
  }
  static Value makeString(std::string s) { Value v; v.kind_ = Kind::String; v.str_ = std::move(s); return v; }
  static Value makeArray(std::vector<Value> a) { Value v; v.kind_ = Kind::Array; v.items_ = std::move(a); return v; }
  static Value makeObject(std::vector<std::pair<std::string, Value>> m) {
    Value v; v.kind_ = Kind::Object; v.members_ = std::move(m); return v;
  }

private:
  Kind kind_ = Kind::Null;
  bool b_ = false;
  bool integral_ = false;
  double num_ = 0;
  int64_t int_ = 0;
  std::string str_;
  std::vector<Value> items_;
  std::vector<std::pair<std::string, Value>> members_;
};

/// Parses `text`. On failure returns false and sets `error` to "line L, column C: what".
/// Nesting deeper than 512 levels is refused (no stack exhaustion on hostile input).
bool parse(const std::string &text, Value &out, std::string &error);

} // namespace json
} // namespace photon

#endif
