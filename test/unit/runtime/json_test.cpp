// The runtime's JSON reading (jsonio.h: nlohmann::json plus line/column errors and a depth
// limit), as the manifest and vocabulary readers use it.
#include "jsonio.h"

#include <gtest/gtest.h>

using photon::rt::Json;
using photon::rt::jsonGet;
using photon::rt::jsonInt;
using photon::rt::jsonIsInteger;
using photon::rt::parseJson;

TEST(Json, ParsesNestedDocument) {
  Json v;
  std::string err;
  ASSERT_TRUE(parseJson(R"({"a": [1, 2.5, -3e2, true, false, null], "b": {"c": "x\u00e9\n"}})", v, err)) << err;
  ASSERT_TRUE(v.is_object());
  const Json *a = jsonGet(v, "a");
  ASSERT_TRUE(a && a->is_array());
  ASSERT_EQ(a->size(), 6u);
  EXPECT_TRUE(jsonIsInteger((*a)[0]));
  EXPECT_EQ(jsonInt((*a)[0]), 1);
  EXPECT_FALSE(jsonIsInteger((*a)[1]));
  EXPECT_DOUBLE_EQ((*a)[1].get<double>(), 2.5);
  EXPECT_TRUE(jsonIsInteger((*a)[2])); // -300, integral value
  EXPECT_EQ(jsonInt((*a)[2]), -300);
  EXPECT_TRUE((*a)[3].get<bool>());
  EXPECT_TRUE((*a)[5].is_null());
  EXPECT_EQ(jsonGet(*jsonGet(v, "b"), "c")->get<std::string>(), "x\xc3\xa9\n");
  EXPECT_EQ(jsonGet(v, "missing"), nullptr);
  // Beyond int64: a number, not an integer.
  ASSERT_TRUE(parseJson("[9223372036854775807, 9223372036854775808]", v, err)) << err;
  EXPECT_TRUE(jsonIsInteger(v[0]));
  EXPECT_FALSE(jsonIsInteger(v[1]));
}

TEST(Json, SurrogatePairs) {
  Json v;
  std::string err;
  ASSERT_TRUE(parseJson(R"("\ud83d\ude00")", v, err)) << err;
  EXPECT_EQ(v.get<std::string>(), "\xf0\x9f\x98\x80");
}

TEST(Json, ErrorsCarryLineAndColumn) {
  Json v;
  std::string err;
  EXPECT_FALSE(parseJson("{\n  \"a\": 1,\n  \"b\" 2\n}", v, err));
  EXPECT_NE(err.find("line 3"), std::string::npos) << err;
  EXPECT_NE(err.find("expected ':'"), std::string::npos) << err;
  EXPECT_FALSE(parseJson("[1, 2", v, err));
  EXPECT_FALSE(parseJson("{\"a\": 01}", v, err));
  EXPECT_FALSE(parseJson("\"unterminated", v, err));
  EXPECT_FALSE(parseJson("[1] x", v, err));
  EXPECT_NE(err.find("trailing"), std::string::npos);
  EXPECT_FALSE(parseJson("", v, err));
}

TEST(Json, DeepNestingIsRefusedNotCrashing) {
  std::string deep(100000, '[');
  Json v;
  std::string err;
  EXPECT_FALSE(parseJson(deep, v, err));
  EXPECT_NE(err.find("nesting"), std::string::npos) << err;
}
