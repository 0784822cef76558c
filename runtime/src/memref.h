// Builds MLIR memref descriptors ({T *allocated; T *aligned; int64_t offset;
// int64_t sizes[R]; int64_t strides[R]}, StridedMemRefType<T, R>) for contiguous row-major
// buffers owned by the caller, and the `void **args` array a stage entry point takes.
#ifndef PHOTON_RUNTIME_MEMREF_H
#define PHOTON_RUNTIME_MEMREF_H

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <vector>

namespace photon::rt {

class MemRef {
public:
  static constexpr int kMaxRank = 8;
  MemRef() = default;
  MemRef(const void *data, std::initializer_list<int64_t> sizes) { set(data, sizes.begin(), sizes.size()); }
  MemRef(const void *data, const std::vector<int64_t> &sizes) { set(data, sizes.data(), sizes.size()); }

  int rank() const { return rank_; }
  int64_t size(int i) const { return words_[3 + i]; }
  int64_t stride(int i) const { return words_[3 + rank_ + i]; }
  /// Pointer to the descriptor (what goes into args[i]).
  void *descriptor() { return words_; }
  /// The buffer's address (allocated == aligned, offset 0).
  const void *data() const {
    uint64_t p;
    std::memcpy(&p, &words_[1], 8);
    return reinterpret_cast<const void *>(static_cast<uintptr_t>(p));
  }
  /// Points the descriptor at another buffer of the same shape (a device copy of it).
  void setData(const void *data) {
    uint64_t p = reinterpret_cast<uintptr_t>(data);
    std::memcpy(&words_[0], &p, 8);
    std::memcpy(&words_[1], &p, 8);
  }
  int64_t numElements() const {
    int64_t n = 1;
    for (int i = 0; i < rank_; ++i) n *= words_[3 + i];
    return n;
  }

private:
  void set(const void *data, const int64_t *sizes, size_t rank) {
    rank_ = static_cast<int>(rank);
    uint64_t p = reinterpret_cast<uintptr_t>(data);
    std::memcpy(&words_[0], &p, 8);
    std::memcpy(&words_[1], &p, 8);
    words_[2] = 0;
    int64_t stride = 1;
    for (int i = rank_ - 1; i >= 0; --i) {
      words_[3 + i] = sizes[i];
      words_[3 + rank_ + i] = stride;
      stride *= sizes[i];
    }
  }
  static_assert(sizeof(void *) == 8, "the stage ABI assumes 64-bit pointers");
  int64_t words_[3 + 2 * kMaxRank] = {};
  int rank_ = 0;
};

/// Argument list of one stage call; descriptors live as long as the list.
class StageArgs {
public:
  explicit StageArgs(size_t n) { refs_.reserve(n); }
  StageArgs &add(const void *data, std::initializer_list<int64_t> sizes) {
    refs_.emplace_back(data, sizes);
    return *this;
  }
  StageArgs &add(const void *data, const std::vector<int64_t> &sizes) {
    refs_.emplace_back(data, sizes);
    return *this;
  }
  void **args() {
    ptrs_.clear();
    for (auto &r : refs_) ptrs_.push_back(r.descriptor());
    return ptrs_.data();
  }
  const MemRef &operator[](size_t i) const { return refs_[i]; }
  MemRef &at(size_t i) { return refs_[i]; }
  size_t size() const { return refs_.size(); }

private:
  std::vector<MemRef> refs_;
  std::vector<void *> ptrs_;
};

} // namespace photon::rt

#endif
