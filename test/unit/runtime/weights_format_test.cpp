// The compile-time weight conversions of weights_format.h (photon-compile --weights): f16 /
// bf16 rounding to nearest even, and the q8 / q4 group quantizers' error bounds.
#include "photon/weights_format.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

namespace w = photon::weights;

namespace {
uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float fromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
} // namespace

TEST(WeightsFormat, F16KnownValues) {
  EXPECT_EQ(w::f32ToF16(0.0f), 0x0000);
  EXPECT_EQ(w::f32ToF16(-0.0f), 0x8000);
  EXPECT_EQ(w::f32ToF16(1.0f), 0x3c00);
  EXPECT_EQ(w::f32ToF16(-2.0f), 0xc000);
  EXPECT_EQ(w::f32ToF16(65504.0f), 0x7bff);      // largest finite
  EXPECT_EQ(w::f32ToF16(65520.0f), 0x7c00);      // rounds to infinity
  EXPECT_EQ(w::f32ToF16(INFINITY), 0x7c00);
  EXPECT_EQ(w::f32ToF16(std::ldexp(1.0f, -24)), 0x0001); // smallest subnormal
  EXPECT_EQ(w::f32ToF16(std::ldexp(1.0f, -25)), 0x0000); // tie: to even (0)
  EXPECT_EQ(w::f32ToF16(std::ldexp(3.0f, -26)), 0x0001); // above the tie
  EXPECT_EQ(w::f32ToF16(std::ldexp(1.0f, -14)), 0x0400); // smallest normal
  // 1 + 2^-11 is a tie between 1 and 1 + 2^-10: to even (1); 1 + 3 * 2^-11 rounds up to even
  EXPECT_EQ(w::f32ToF16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  EXPECT_EQ(w::f32ToF16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_TRUE(std::isnan(w::f16ToF32(w::f32ToF16(NAN))));
}

TEST(WeightsFormat, F16RoundTripIsNearest) {
  // Every f16 value round-trips; random floats land on the nearer neighbour.
  for (uint32_t h = 0; h < 0x7c00; ++h) {
    ASSERT_EQ(w::f32ToF16(w::f16ToF32(static_cast<uint16_t>(h))), h) << h;
    ASSERT_EQ(w::f32ToF16(-w::f16ToF32(static_cast<uint16_t>(h))), h | 0x8000) << h;
  }
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-70000.0f, 70000.0f);
  for (int i = 0; i < 100000; ++i) {
    float f = u(rng) * std::ldexp(1.0f, -static_cast<int>(rng() % 30));
    uint16_t h = w::f32ToF16(f);
    float g = w::f16ToF32(h);
    if (std::isinf(g)) {
      ASSERT_GE(std::fabs(f), 65520.0f);
      continue;
    }
    // no other f16 value is nearer
    float up = w::f16ToF32(static_cast<uint16_t>(h + 1)), down = w::f16ToF32(static_cast<uint16_t>(h - 1));
    ASSERT_LE(std::fabs(f - g), std::fabs(f - up)) << f;
    if ((h & 0x7fff) != 0) ASSERT_LE(std::fabs(f - g), std::fabs(f - down)) << f;
  }
}

TEST(WeightsFormat, BF16RoundsToNearestEven) {
  EXPECT_EQ(w::f32ToBF16(1.0f), 0x3f80);
  EXPECT_EQ(w::f32ToBF16(fromBits(0x3f808000)), 0x3f80); // tie: to even
  EXPECT_EQ(w::f32ToBF16(fromBits(0x3f818000)), 0x3f82); // tie: to even (up)
  EXPECT_EQ(w::f32ToBF16(fromBits(0x3f808001)), 0x3f81); // above the tie
  EXPECT_EQ(bits(w::bf16ToF32(0x3f81)), 0x3f810000u);
  EXPECT_TRUE(std::isnan(w::bf16ToF32(w::f32ToBF16(NAN))));
}

TEST(WeightsFormat, Q8AndQ4GroupErrorBounds) {
  std::mt19937 rng(11);
  std::normal_distribution<float> n(0.0f, 0.05f);
  const int64_t K = 128;
  std::vector<float> row(K);
  for (auto &v : row) v = n(rng);
  row[37] = 0.0f; // a group may hold zeros
  std::vector<int8_t> q(K);
  std::vector<uint16_t> d(K / w::kQ8Group);
  w::quantizeRowQ8(row.data(), K, q.data(), d.data());
  std::vector<uint8_t> p(K / 2);
  std::vector<uint16_t> d4(K / w::kQ8Group);
  w::quantizeRowQ4(row.data(), K, p.data(), d4.data());
  for (int64_t g = 0; g < K / w::kQ8Group; ++g) {
    float amax = 0;
    for (int64_t i = 0; i < w::kQ8Group; ++i) amax = std::max(amax, std::fabs(row[g * 32 + i]));
    float s8 = w::f16ToF32(d[g]), s4 = w::f16ToF32(d4[g]);
    EXPECT_NEAR(s8, amax / 127, amax / 127 * 1e-3); // f16-rounded scale
    EXPECT_NEAR(std::fabs(s4), amax / 8, amax / 8 * 1e-3);
    for (int64_t i = 0; i < w::kQ8Group; ++i) {
      int64_t k = g * 32 + i;
      ASSERT_GE(q[k], -127);
      // q8: within half a step (plus the scale's rounding)
      EXPECT_LE(std::fabs(q[k] * s8 - row[k]), 0.5f * s8 * 1.01f) << k;
      // q4: byte 16 g + i % 16, low nibble for i < 16; within half a step, except the clamp
      // at +7 (the value opposite the group's extreme may lose up to one step)
      uint8_t byte = p[g * 16 + i % 16];
      int nib = i < 16 ? (byte & 15) : (byte >> 4);
      EXPECT_LE(std::fabs((nib - 8) * s4 - row[k]), 1.01f * std::fabs(s4)) << k;
    }
  }
  // the group's extreme value is exact in q4 (nibble 0 times d = m / -8)
}
