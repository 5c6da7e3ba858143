// train.precision bf16: products in bfloat16 (gta_arch.h's Product). Everything else, and every tensor
// JS holds, stays float32: the weights are the float32 master copy AdamW updates, and a product's
// result comes back as float32 (rounded to bfloat16 first), as PyTorch's autocast runs matmul in
// bfloat16 and reductions and losses in float32.
//
// A model's weights (keepBf16Copies) keep their bfloat16 copy until they change: without it each
// product cast its weight again (a GTA step multiplies each weight some 18 times: its decoding steps,
// the RL and guess passes, their backwards), 6 bytes a parameter of memory traffic each time. A copy
// lasts until the weight changes: AdamW's in-place update drops it (WeightChanged; the addon's tensors
// are inference tensors, without ATen's version counter), and a weight given new data (tfjs's assign)
// is another storage, no longer kept. A view of the weight (its transpose, in a backward) reads the
// same copy through its strides.
#include "gta_arch.h"

#include <mutex>
#include <unordered_map>

bool gta::bf16_products = false;
bool gta::bf16_true = false;

namespace {
struct Copy {
  c10::weak_intrusive_ptr<c10::TensorImpl> weight;
  at::Tensor bf16;
};
// by the weight's storage; a split pass's parts (RunParts' threads) multiply at once: one lock
std::unordered_map<const c10::StorageImpl*, Copy> copies;
std::mutex copies_lock;
}  // namespace

void gta::KeepBf16Copies(const std::vector<at::Tensor>& weights) {
  std::lock_guard<std::mutex> hold(copies_lock);
  // weights freed since (a model disposed) leave with their copies
  for (auto it = copies.begin(); it != copies.end();) it = it->second.weight.expired() ? copies.erase(it) : std::next(it);
  for (const auto& w : weights) {
    if (w.scalar_type() != at::kFloat || !w.is_contiguous() || w.storage_offset() != 0) continue;
    copies.insert_or_assign(w.storage().unsafeGetStorageImpl(), Copy{c10::weak_intrusive_ptr<c10::TensorImpl>(w.getIntrusivePtr()), at::Tensor()});
  }
}

at::Tensor gta::Bf16Of(const at::Tensor& t) {
  if (t.scalar_type() == at::kBFloat16) return t;
  if (t.has_storage()) {
    std::lock_guard<std::mutex> hold(copies_lock);
    auto it = copies.find(t.storage().unsafeGetStorageImpl());
    if (it != copies.end()) {
      if (auto impl = it->second.weight.lock()) {
        Copy& c = it->second;
        if (!c.bf16.defined()) c.bf16 = at::Tensor(std::move(impl)).to(at::kBFloat16);
        return c.bf16.as_strided(t.sizes(), t.strides(), t.storage_offset());
      }
      copies.erase(it);  // the weight is gone
    }
  }
  // not a kept weight (an activation): cast outside the lock
  return t.to(at::kBFloat16);
}

void gta::WeightChanged(const at::Tensor& w) {
  std::lock_guard<std::mutex> hold(copies_lock);
  if (copies.empty() || !w.has_storage()) return;
  auto it = copies.find(w.storage().unsafeGetStorageImpl());
  if (it != copies.end()) it->second.bf16.reset();
}
