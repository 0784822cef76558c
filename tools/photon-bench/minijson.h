// A small JSON reader (manifest.json's cost_model) and writer (the result file) for
// photon-bench. Reader: objects, arrays, strings (common escapes), numbers, true/false/null.
#ifndef PHOTON_BENCH_MINIJSON_H
#define PHOTON_BENCH_MINIJSON_H

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace bench {

struct JValue {
  enum Kind { Null, Bool, Num, Str, Arr, Obj } kind = Null;
  bool b = false;
  double num = 0;
  std::string str;
  std::vector<JValue> arr;
  std::vector<std::pair<std::string, JValue>> obj;

  const JValue *get(const std::string &k) const {
    if (kind != Obj) return nullptr;
    for (auto &kv : obj)
      if (kv.first == k) return &kv.second;
    return nullptr;
  }
  double number(const std::string &k, double dflt = 0) const {
    const JValue *v = get(k);
    return v && v->kind == Num ? v->num : dflt;
  }
};

class JParser {
 public:
  explicit JParser(const std::string &s) : s_(s) {}
  bool parse(JValue &out, std::string &err) {
    if (!value(out)) {
      err = "JSON error at byte " + std::to_string(i_) + ": " + err_;
      return false;
    }
    ws();
    if (i_ != s_.size()) {
      err = "JSON error at byte " + std::to_string(i_) + ": trailing characters";
      return false;
    }
    return true;
  }

 private:
  const std::string &s_;
  size_t i_ = 0;
  std::string err_;
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t')) ++i_;
  }
  bool fail(const char *m) {
    err_ = m;
    return false;
  }
  bool lit(const char *w) {
    size_t n = std::char_traits<char>::length(w);
    if (s_.compare(i_, n, w) != 0) return fail("bad literal");
    i_ += n;
    return true;
  }
  bool string(std::string &out) {
    if (s_[i_] != '"') return fail("expected a string");
    ++i_;
    while (i_ < s_.size() && s_[i_] != '"') {
      char c = s_[i_++];
      if (c == '\\') {
        if (i_ >= s_.size()) return fail("bad escape");
        char e = s_[i_++];
        switch (e) {
          case 'n': out += '\n'; break;
          case 't': out += '\t'; break;
          case 'r': out += '\r'; break;
          case 'b': out += '\b'; break;
          case 'f': out += '\f'; break;
          case 'u': {
            if (i_ + 4 > s_.size()) return fail("bad \\u escape");
            unsigned cp = std::strtoul(s_.substr(i_, 4).c_str(), nullptr, 16);
            i_ += 4;
            if (cp < 0x80) out += static_cast<char>(cp);
            else if (cp < 0x800) {
              out += static_cast<char>(0xC0 | (cp >> 6));
              out += static_cast<char>(0x80 | (cp & 0x3F));
            } else {
              out += static_cast<char>(0xE0 | (cp >> 12));
              out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
              out += static_cast<char>(0x80 | (cp & 0x3F));
            }
            break;
          }
          default: out += e;
        }
      } else {
        out += c;
      }
    }
    if (i_ >= s_.size()) return fail("unterminated string");
    ++i_;
    return true;
  }
  bool value(JValue &v) {
    ws();
    if (i_ >= s_.size()) return fail("unexpected end");
    char c = s_[i_];
    if (c == '{') {
      v.kind = JValue::Obj;
      ++i_;
      ws();
      if (i_ < s_.size() && s_[i_] == '}') return ++i_, true;
      while (true) {
        ws();
        std::string k;
        if (i_ >= s_.size() || !string(k)) return fail("expected a key");
        ws();
        if (i_ >= s_.size() || s_[i_] != ':') return fail("expected ':'");
        ++i_;
        JValue child;
        if (!value(child)) return false;
        v.obj.emplace_back(std::move(k), std::move(child));
        ws();
        if (i_ < s_.size() && s_[i_] == ',') { ++i_; continue; }
        if (i_ < s_.size() && s_[i_] == '}') return ++i_, true;
        return fail("expected ',' or '}'");
      }
    }
    if (c == '[') {
      v.kind = JValue::Arr;
      ++i_;
      ws();
      if (i_ < s_.size() && s_[i_] == ']') return ++i_, true;
      while (true) {
        JValue child;
        if (!value(child)) return false;
        v.arr.push_back(std::move(child));
        ws();
        if (i_ < s_.size() && s_[i_] == ',') { ++i_; continue; }
        if (i_ < s_.size() && s_[i_] == ']') return ++i_, true;
        return fail("expected ',' or ']'");
      }
    }
    if (c == '"') {
      v.kind = JValue::Str;
      return string(v.str);
    }
    if (c == 't') { v.kind = JValue::Bool; v.b = true; return lit("true"); }
    if (c == 'f') { v.kind = JValue::Bool; return lit("false"); }
    if (c == 'n') { v.kind = JValue::Null; return lit("null"); }
    char *end = nullptr;
    v.num = std::strtod(s_.c_str() + i_, &end);
    if (end == s_.c_str() + i_) return fail("expected a value");
    v.kind = JValue::Num;
    i_ = end - s_.c_str();
    return true;
  }
};

/// Streaming writer with indentation; non-finite numbers are written as null.
class JWriter {
 public:
  std::string out;
  void beginObj() { sep(); out += '{'; stack_.push_back(true); }
  void endObj() { close('}'); }
  void beginArr() { sep(); out += '['; stack_.push_back(true); }
  void endArr() { close(']'); }
  void key(const std::string &k) {
    sep();
    str(k);
    out += ": ";
    afterKey_ = true;
  }
  void value(double v) {
    sep();
    if (!std::isfinite(v)) { out += "null"; return; }
    char buf[64];
    if (v == std::floor(v) && std::fabs(v) < 9e15) std::snprintf(buf, sizeof buf, "%.0f", v);
    else std::snprintf(buf, sizeof buf, "%.6g", v);
    out += buf;
  }
  void value(const std::string &s) { sep(); str(s); }
  void value(const char *s) { value(std::string(s)); }
  void value(int v) { value(static_cast<double>(v)); }
  void value(long v) { value(static_cast<double>(v)); }
  void value(long long v) { value(static_cast<double>(v)); }
  void value(unsigned long v) { value(static_cast<double>(v)); }
  void value(unsigned long long v) { value(static_cast<double>(v)); }
  void value(bool b) { sep(); out += b ? "true" : "false"; }
  void null() { sep(); out += "null"; }
  template <class T> void kv(const std::string &k, const T &v) { key(k); value(v); }

 private:
  std::vector<bool> stack_;  // true = first element not yet written
  bool afterKey_ = false;
  void sep() {
    if (afterKey_) { afterKey_ = false; return; }
    if (stack_.empty()) return;
    if (!stack_.back()) out += ',';
    stack_.back() = false;
    out += '\n';
    out.append(stack_.size(), ' ');
  }
  void close(char c) {
    bool empty = stack_.back();
    stack_.pop_back();
    if (!empty) { out += '\n'; out.append(stack_.size(), ' '); }
    out += c;
  }
  void str(const std::string &s) {
    out += '"';
    for (unsigned char ch : s) {
      if (ch == '"' || ch == '\\') { out += '\\'; out += static_cast<char>(ch); }
      else if (ch == '\n') out += "\\n";
      else if (ch < 0x20) { char b[8]; std::snprintf(b, sizeof b, "\\u%04x", ch); out += b; }
      else out += static_cast<char>(ch);
    }
    out += '"';
  }
};

}  // namespace bench

#endif
