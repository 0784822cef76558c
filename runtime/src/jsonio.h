// JSON for libphoton: nlohmann::json (Debian nlohmann-json3-dev, header-only) with the few
// helpers the manifest and vocabulary readers need. Parse errors say "line L, column C: what";
// nesting deeper than 512 levels is refused (hostile input never exhausts the stack or the
// heap through depth). Objects keep their order (ordered_json).
#ifndef PHOTON_RUNTIME_JSONIO_H
#define PHOTON_RUNTIME_JSONIO_H

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace photon::rt {

using Json = nlohmann::ordered_json;

/// Parses `text`. On failure returns false and sets `error` to "line L, column C: what".
bool parseJson(const std::string &text, Json &out, std::string &error);

/// True for a number with an integral value that fits in int64 (1, -3e2, 4.0; not 2.5 and
/// not 2^63).
bool jsonIsInteger(const Json &v);
/// The value of a number for which jsonIsInteger is true.
int64_t jsonInt(const Json &v);
/// Member lookup; nullptr when absent or `v` is not an object.
const Json *jsonGet(const Json &v, const std::string &key);
/// "object", "array", "string", "number", "boolean", "null".
const char *jsonKindName(const Json &v);

} // namespace photon::rt

#endif
