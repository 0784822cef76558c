#include "json.h"

#include <gtest/gtest.h>

using photon::json::parse;
using photon::json::Value;

TEST(Json, ParsesNestedDocument) {
  Value v;
  std::string err;
  ASSERT_TRUE(parse(R"({"a": [1, 2.5, -3e2, true, false, null], "b": {"c": "x\u00e9\n"}})", v, err)) << err;
  ASSERT_TRUE(v.isObject());
  const Value *a = v.get("a");
  ASSERT_TRUE(a && a->isArray());
  ASSERT_EQ(a->size(), 6u);
  EXPECT_TRUE((*a)[0].isInteger());
  EXPECT_EQ((*a)[0].asInt(), 1);
  EXPECT_FALSE((*a)[1].isInteger());
  EXPECT_DOUBLE_EQ((*a)[1].asDouble(), 2.5);
  EXPECT_TRUE((*a)[2].isInteger()); // -300, integral value
  EXPECT_EQ((*a)[2].asInt(), -300);
  EXPECT_TRUE((*a)[3].asBool());
  EXPECT_TRUE((*a)[5].isNull());
  EXPECT_EQ(v.get("b")->get("c")->asString(), "x\xc3\xa9\n");
  EXPECT_EQ(v.get("missing"), nullptr);
}

TEST(Json, SurrogatePairs) {
  Value v;
  std::string err;
  ASSERT_TRUE(parse(R"("\ud83d\ude00")", v, err)) << err;
  EXPECT_EQ(v.asString(), "\xf0\x9f\x98\x80");
}

TEST(Json, ErrorsCarryLineAndColumn) {
  Value v;
  std::string err;
  EXPECT_FALSE(parse("{\n  \"a\": 1,\n  \"b\" 2\n}", v, err));
  EXPECT_NE(err.find("line 3"), std::string::npos) << err;
  EXPECT_NE(err.find("expected ':'"), std::string::npos) << err;
  EXPECT_FALSE(parse("[1, 2", v, err));
  EXPECT_FALSE(parse("{\"a\": 01}", v, err));
  EXPECT_FALSE(parse("\"unterminated", v, err));
  EXPECT_FALSE(parse("[1] x", v, err));
  EXPECT_NE(err.find("trailing"), std::string::npos);
  EXPECT_FALSE(parse("", v, err));
}

TEST(Json, DeepNestingIsRefusedNotCrashing) {
  std::string deep(100000, '[');
  Value v;
  std::string err;
  EXPECT_FALSE(parse(deep, v, err));
  EXPECT_NE(err.find("nesting"), std::string::npos) << err;
}
