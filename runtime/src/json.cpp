#include "json.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace photon {
namespace json {

const Value *Value::get(const std::string &key) const {
  if (kind_ != Kind::Object) return nullptr;
  for (const auto &m : members_)
    if (m.first == key) return &m.second;
  return nullptr;
}

const char *Value::kindName(Kind k) {
  switch (k) {
  case Kind::Null: return "null";
  case Kind::Bool: return "boolean";
  case Kind::Number: return "number";
  case Kind::String: return "string";
  case Kind::Array: return "array";
  case Kind::Object: return "object";
  }
  return "?";
}

namespace {

class Parser {
public:
  explicit Parser(const std::string &t) : s_(t.data()), n_(t.size()) {}

  bool run(Value &out, std::string &error) {
    skipWs();
    if (!value(out, 0)) {
      error = where() + ": " + err_;
      return false;
    }
    skipWs();
    if (i_ != n_) {
      error = where() + ": unexpected trailing characters after the JSON value";
      return false;
    }
    return true;
  }

private:
  std::string where() const {
    size_t line = 1, col = 1;
    for (size_t k = 0; k < i_ && k < n_; ++k) {
      if (s_[k] == '\n') { ++line; col = 1; } else { ++col; }
    }
    return "line " + std::to_string(line) + ", column " + std::to_string(col);
  }
  bool fail(const std::string &m) { err_ = m; return false; }
  void skipWs() {
    while (i_ < n_ && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  bool literal(const char *lit) {
    size_t len = std::strlen(lit);
    if (n_ - i_ < len || std::memcmp(s_ + i_, lit, len) != 0) return false;
    i_ += len;
    return true;
  }

  bool value(Value &out, int depth) {
    if (depth > 512) return fail("nesting deeper than 512 levels");
    if (i_ >= n_) return fail("unexpected end of input, expected a value");
    char c = s_[i_];
    if (c == '{') return object(out, depth);
    if (c == '[') return array(out, depth);
    if (c == '"') {
      std::string str;
      if (!string(str)) return false;
      out = Value::makeString(std::move(str));
      return true;
    }
    if (c == 't') { if (literal("true")) { out = Value::makeBool(true); return true; } }
    else if (c == 'f') { if (literal("false")) { out = Value::makeBool(false); return true; } }
    else if (c == 'n') { if (literal("null")) { out = Value::makeNull(); return true; } }
    else if (c == '-' || (c >= '0' && c <= '9')) return number(out);
    return fail(std::string("unexpected character '") + c + "', expected a value");
  }

  bool object(Value &out, int depth) {
    ++i_; // {
    std::vector<std::pair<std::string, Value>> members;
    skipWs();
    if (i_ < n_ && s_[i_] == '}') { ++i_; out = Value::makeObject(std::move(members)); return true; }
    while (true) {
      skipWs();
      if (i_ >= n_ || s_[i_] != '"') return fail("expected a string key in object");
      std::string key;
      if (!string(key)) return false;
      skipWs();
      if (i_ >= n_ || s_[i_] != ':') return fail("expected ':' after object key \"" + key + "\"");
      ++i_;
      skipWs();
      Value v;
      if (!value(v, depth + 1)) return false;
      members.emplace_back(std::move(key), std::move(v));
      skipWs();
      if (i_ < n_ && s_[i_] == ',') { ++i_; continue; }
      if (i_ < n_ && s_[i_] == '}') { ++i_; break; }
      return fail("expected ',' or '}' in object");
    }
    out = Value::makeObject(std::move(members));
    return true;
  }

  bool array(Value &out, int depth) {
    ++i_; // [
    std::vector<Value> items;
    skipWs();
    if (i_ < n_ && s_[i_] == ']') { ++i_; out = Value::makeArray(std::move(items)); return true; }
    while (true) {
      skipWs();
      Value v;
      if (!value(v, depth + 1)) return false;
      items.push_back(std::move(v));
      skipWs();
      if (i_ < n_ && s_[i_] == ',') { ++i_; continue; }
      if (i_ < n_ && s_[i_] == ']') { ++i_; break; }
      return fail("expected ',' or ']' in array");
    }
    out = Value::makeArray(std::move(items));
    return true;
  }

  static void appendUtf8(std::string &s, uint32_t cp) {
    if (cp < 0x80) s += static_cast<char>(cp);
    else if (cp < 0x800) { s += static_cast<char>(0xC0 | (cp >> 6)); s += static_cast<char>(0x80 | (cp & 0x3F)); }
    else if (cp < 0x10000) {
      s += static_cast<char>(0xE0 | (cp >> 12)); s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      s += static_cast<char>(0xF0 | (cp >> 18)); s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F)); s += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  bool hex4(uint32_t &v) {
    if (n_ - i_ < 4) return fail("truncated \\u escape");
    v = 0;
    for (int k = 0; k < 4; ++k) {
      char c = s_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= c - '0';
      else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
      else return fail("invalid hex digit in \\u escape");
    }
    return true;
  }

  bool string(std::string &out) {
    ++i_; // "
    while (true) {
      if (i_ >= n_) return fail("unterminated string");
      unsigned char c = static_cast<unsigned char>(s_[i_++]);
      if (c == '"') return true;
      if (c < 0x20) return fail("control character in string (must be escaped)");
      if (c != '\\') { out += static_cast<char>(c); continue; }
      if (i_ >= n_) return fail("unterminated escape");
      char e = s_[i_++];
      switch (e) {
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      case '/': out += '/'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'u': {
        uint32_t cp;
        if (!hex4(cp)) return false;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          uint32_t lo;
          if (n_ - i_ >= 6 && s_[i_] == '\\' && s_[i_ + 1] == 'u') {
            i_ += 2;
            if (!hex4(lo)) return false;
            if (lo < 0xDC00 || lo > 0xDFFF) return fail("invalid low surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else {
            cp = 0xFFFD; // lone high surrogate
          }
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          cp = 0xFFFD;
        }
        appendUtf8(out, cp);
        break;
      }
      default: return fail(std::string("invalid escape '\\") + e + "'");
      }
    }
  }

  bool number(Value &out) {
    size_t start = i_;
    bool integral = true;
    if (s_[i_] == '-') ++i_;
    if (i_ >= n_ || !(s_[i_] >= '0' && s_[i_] <= '9')) return fail("invalid number");
    if (s_[i_] == '0') ++i_;
    else while (i_ < n_ && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    if (i_ < n_ && s_[i_] == '.') {
      integral = false;
      ++i_;
      if (i_ >= n_ || !(s_[i_] >= '0' && s_[i_] <= '9')) return fail("invalid number: digit expected after '.'");
      while (i_ < n_ && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    }
    if (i_ < n_ && (s_[i_] == 'e' || s_[i_] == 'E')) {
      integral = false;
      ++i_;
      if (i_ < n_ && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (i_ >= n_ || !(s_[i_] >= '0' && s_[i_] <= '9')) return fail("invalid number: digit expected in exponent");
      while (i_ < n_ && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    }
    std::string tok(s_ + start, i_ - start);
    double d = std::strtod(tok.c_str(), nullptr);
    int64_t iv = 0;
    if (integral) {
      errno = 0;
      long long ll = std::strtoll(tok.c_str(), nullptr, 10);
      if (errno == ERANGE) integral = false;
      else iv = ll;
    } else if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e18) {
      integral = true;
      iv = static_cast<int64_t>(d);
    }
    out = Value::makeNumber(d, integral, iv);
    return true;
  }

  const char *s_;
  size_t n_;
  size_t i_ = 0;
  std::string err_;
};

} // namespace

bool parse(const std::string &text, Value &out, std::string &error) {
  Parser p(text);
  return p.run(out, error);
}

} // namespace json
} // namespace photon
