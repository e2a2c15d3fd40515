// Per-lane sums of packed raw-byte INT8 panels (qgemm_internal.h), for the packers that do not
// produce them while packing: convolution's implicit-GEMM packers fill the same panels as the
// matrix packers, and the driver sums them here to fold the zero points. Plain C++ (the compiler
// vectorizes the lane loops); the panels are L1/L2-hot when summed, right after packing.
#include <cstring>

#include "cpu/gemm/qgemm_internal.h"

namespace aicc::cpu::qgemm_detail {
namespace {

// Quad layout: word (q, l) at byte (q * lanes + l) * 4. Sums modulo 2^32.
template <bool Signed>
void quad_sums(const void* panel, int64_t kw, int lanes, int32_t* sums) {
  const uint8_t* p = static_cast<const uint8_t*>(panel);
  uint32_t acc[64] = {};
  for (int64_t q = 0; q < kw; ++q, p += 4 * lanes)
    for (int l = 0; l < lanes; ++l)
      for (int t = 0; t < 4; ++t)
        acc[l] += Signed ? static_cast<uint32_t>(static_cast<int32_t>(static_cast<int8_t>(p[4 * l + t]))) : p[4 * l + t];
  for (int l = 0; l < lanes; ++l) sums[l] = static_cast<int32_t>(acc[l]);
}

// usmmla pair layout (aarch64_kernels.h): word pairs hold 16 bytes per lane pair [lane 2r: 8 k]
// [lane 2r + 1: 8 k]; an odd last word holds 8 bytes per lane pair [2r: 4 k][2r + 1: 4 k].
template <bool Signed>
void pair_sums(const void* panel, int64_t kw, int lanes, int32_t* sums) {
  const uint8_t* p = static_cast<const uint8_t*>(panel);
  uint32_t acc[64] = {};
  auto add = [&](const uint8_t* b, int l, int count) {
    for (int t = 0; t < count; ++t)
      acc[l] += Signed ? static_cast<uint32_t>(static_cast<int32_t>(static_cast<int8_t>(b[t]))) : b[t];
  };
  const int64_t pairs = kw / 2;
  for (int64_t w = 0; w < pairs; ++w, p += 2 * lanes * 4)
    for (int l = 0; l < lanes; ++l) add(p + (l / 2) * 16 + (l % 2) * 8, l, 8);
  if (kw % 2 != 0)
    for (int l = 0; l < lanes; ++l) add(p + (l / 2) * 8 + (l % 2) * 4, l, 4);
  for (int l = 0; l < lanes; ++l) sums[l] = static_cast<int32_t>(acc[l]);
}

}  // namespace

void panel_sums_quads_u8(const void* panel, int64_t kw, int lanes, int32_t* sums) {
  quad_sums<false>(panel, kw, lanes, sums);
}
void panel_sums_quads_s8(const void* panel, int64_t kw, int lanes, int32_t* sums) {
  quad_sums<true>(panel, kw, lanes, sums);
}
void panel_sums_pairs_u8(const void* panel, int64_t kw, int lanes, int32_t* sums) {
  pair_sums<false>(panel, kw, lanes, sums);
}
void panel_sums_pairs_s8(const void* panel, int64_t kw, int lanes, int32_t* sums) {
  pair_sums<true>(panel, kw, lanes, sums);
}

}  // namespace aicc::cpu::qgemm_detail
