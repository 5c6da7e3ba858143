// gta's bridge from Node to libtorch (ATen).
//
// Tensors live here as at::Tensor in a slot table; JavaScript holds their integer ids. Instead of one
// C++ binding per operation, JavaScript looks up any ATen operator by its schema name once
// (`op("aten::add", "Tensor")`) and then calls it through the c10 dispatcher with a JS array of
// arguments, converted by the operator's own schema. So adding a kernel on the JS side needs no C++,
// and each call costs a few microseconds, small beside the kernels of a training step.
//
// Everything runs on the Node main thread under c10::InferenceMode: tfjs does the autodiff, so
// ATen's autograd bookkeeping would be pure overhead.
#include "gta_arch.h"

#include <napi.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/InferenceMode.h>
#include <torch/version.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <string>
#include <unordered_map>
#include <vector>

// dist.cc: the process group of data-parallel training.
void RegisterDist(Napi::Env env, Napi::Object exports);
// decode_step.cc: the fused decoding step.
void RegisterDecodeStep(Napi::Env env, Napi::Object exports);
// train_pass.cc: the fused forward and backward pass.
void RegisterTrainPass(Napi::Env env, Napi::Object exports);
// grad_stats.cc: dot products and norms over gradient sets.
void RegisterGradStats(Napi::Env env, Napi::Object exports);
// adamw.cc: the single-pass AdamW update.
void RegisterAdamW(Napi::Env env, Napi::Object exports);
// log_probs.cc: log-probabilities of chosen tokens over logits rows.
void RegisterLogProbs(Napi::Env env, Napi::Object exports);

namespace {

std::vector<at::Tensor> slots;
std::vector<int32_t> free_slots;
std::vector<c10::OperatorHandle> ops;
std::unique_ptr<c10::InferenceMode> inference_mode;

// The bytes of the distinct storages the slots hold (a view counts once, with its base) and the most
// they held since the last memory(true): what tensors take, apart from an operator's own temporaries
// and the fused passes' saved activations (scripts/bench_hf.ts's memory account).
struct Held {
  int32_t refs;
  int64_t bytes;
};
std::unordered_map<const c10::StorageImpl*, Held> held;
int64_t live_bytes = 0;
int64_t peak_bytes = 0;

void Hold(const at::Tensor& t) {
  if (!t.defined() || !t.has_storage()) return;
  auto it = held.try_emplace(t.storage().unsafeGetStorageImpl(), Held{0, static_cast<int64_t>(t.storage().nbytes())}).first;
  if (it->second.refs++ == 0) {
    live_bytes += it->second.bytes;
    if (live_bytes > peak_bytes) peak_bytes = live_bytes;
  }
}

void Release(const at::Tensor& t) {
  if (!t.defined() || !t.has_storage()) return;
  auto it = held.find(t.storage().unsafeGetStorageImpl());
  if (it == held.end() || --it->second.refs > 0) return;
  live_bytes -= it->second.bytes;
  held.erase(it);
}

int32_t Store(at::Tensor t) {
  Hold(t);
  if (!free_slots.empty()) {
    int32_t id = free_slots.back();
    free_slots.pop_back();
    slots[id] = std::move(t);
    return id;
  }
  slots.push_back(std::move(t));
  return static_cast<int32_t>(slots.size() - 1);
}

const at::Tensor& Get(const Napi::Env& env, const Napi::Value& v) {
  if (!v.IsNumber()) throw Napi::TypeError::New(env, "expected a tensor id");
  int32_t id = v.As<Napi::Number>().Int32Value();
  if (id < 0 || id >= static_cast<int32_t>(slots.size()) || !slots[id].defined()) {
    throw Napi::Error::New(env, "unknown tensor id " + std::to_string(id));
  }
  return slots[id];
}

// tfjs dtypes by code: 0 float32, 1 int32, 2 bool.
at::ScalarType DtypeOf(int code) {
  switch (code) {
    case 0: return at::kFloat;
    case 1: return at::kInt;
    case 2: return at::kBool;
    default: throw std::runtime_error("unsupported dtype code " + std::to_string(code));
  }
}

std::vector<int64_t> IntList(const Napi::Env& env, const Napi::Value& v) {
  if (!v.IsArray()) throw Napi::TypeError::New(env, "expected an array of integers");
  auto arr = v.As<Napi::Array>();
  std::vector<int64_t> out(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) out[i] = arr.Get(i).As<Napi::Number>().Int64Value();
  return out;
}

at::Scalar ToScalar(const Napi::Value& v) {
  if (v.IsBoolean()) return at::Scalar(v.As<Napi::Boolean>().Value());
  double d = v.As<Napi::Number>().DoubleValue();
  // An integral JS number becomes an integer scalar, so it never promotes an int tensor to float.
  if (d == static_cast<double>(static_cast<int64_t>(d))) return at::Scalar(static_cast<int64_t>(d));
  return at::Scalar(d);
}

c10::IValue ToIValue(const Napi::Env& env, const Napi::Value& v, const c10::TypePtr& type);

c10::IValue ToList(const Napi::Env& env, const Napi::Value& v, const c10::TypePtr& elem) {
  if (!v.IsArray()) throw Napi::TypeError::New(env, "expected an array for " + elem->str() + "[]");
  auto arr = v.As<Napi::Array>();
  switch (elem->kind()) {
    case c10::TypeKind::IntType:
    case c10::TypeKind::SymIntType: return IntList(env, v);
    case c10::TypeKind::FloatType: {
      std::vector<double> out(arr.Length());
      for (uint32_t i = 0; i < arr.Length(); i++) out[i] = arr.Get(i).As<Napi::Number>().DoubleValue();
      return out;
    }
    case c10::TypeKind::NumberType: {
      std::vector<at::Scalar> out;
      for (uint32_t i = 0; i < arr.Length(); i++) out.push_back(ToScalar(arr.Get(i)));
      return out;
    }
    case c10::TypeKind::BoolType: {
      c10::List<bool> out;
      for (uint32_t i = 0; i < arr.Length(); i++) out.push_back(arr.Get(i).As<Napi::Boolean>().Value());
      return out;
    }
    case c10::TypeKind::TensorType: {
      std::vector<at::Tensor> out;
      out.reserve(arr.Length());
      for (uint32_t i = 0; i < arr.Length(); i++) out.push_back(Get(env, arr.Get(i)));
      return out;
    }
    case c10::TypeKind::OptionalType: {
      c10::List<c10::optional<at::Tensor>> out;
      for (uint32_t i = 0; i < arr.Length(); i++) {
        Napi::Value e = arr.Get(i);
        if (e.IsNull() || e.IsUndefined()) out.push_back(c10::nullopt);
        else out.push_back(Get(env, e));
      }
      return out;
    }
    default: throw Napi::TypeError::New(env, "unsupported list type " + elem->str() + "[]");
  }
}

c10::IValue ToIValue(const Napi::Env& env, const Napi::Value& v, const c10::TypePtr& type) {
  switch (type->kind()) {
    case c10::TypeKind::OptionalType:
      if (v.IsNull() || v.IsUndefined()) return c10::IValue();
      return ToIValue(env, v, type->castRaw<c10::OptionalType>()->getElementType());
    case c10::TypeKind::TensorType: return Get(env, v);
    case c10::TypeKind::IntType:  // also ScalarType, Layout and MemoryFormat, as their enum values
    case c10::TypeKind::SymIntType: return v.As<Napi::Number>().Int64Value();
    case c10::TypeKind::FloatType: return v.As<Napi::Number>().DoubleValue();
    case c10::TypeKind::BoolType: return v.As<Napi::Boolean>().Value();
    case c10::TypeKind::NumberType: return ToScalar(v);
    case c10::TypeKind::StringType: return v.As<Napi::String>().Utf8Value();
    case c10::TypeKind::DeviceObjType: return c10::Device(v.As<Napi::String>().Utf8Value());
    case c10::TypeKind::ListType: return ToList(env, v, type->castRaw<c10::ListType>()->getElementType());
    default: throw Napi::TypeError::New(env, "unsupported argument type " + type->str());
  }
}

// dtype codes: 0 float32, 1 int32, 2 bool (tfjs's three), then 3 int64 and 4 float64 (ATen's index and
// accumulation types, narrowed on the JS side before tfjs sees them); anything else is narrowed here.
int Code(at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat: return 0;
    case at::kInt: return 1;
    case at::kBool: return 2;
    case at::kLong: return 3;
    case at::kDouble: return 4;
    // under bf16-true a bfloat16 result stays so (JS knows it as float32; toArray converts)
    case at::kBFloat16: if (!gta::bf16_true) t = t.to(at::kFloat); return 0;
    case at::kHalf: t = t.to(at::kFloat); return 0;
    default: t = t.to(at::kInt); return 1;
  }
}

// A tensor result goes back as [id, dtype code, ...shape]: one crossing gives JS all it needs.
Napi::Value TensorResult(const Napi::Env& env, at::Tensor t) {
  int code = Code(t);
  auto arr = Napi::Array::New(env, 2 + t.dim());
  for (int64_t i = 0; i < t.dim(); i++) arr.Set(2 + i, Napi::Number::New(env, t.size(i)));
  arr.Set(1u, Napi::Number::New(env, code));
  arr.Set(0u, Napi::Number::New(env, Store(std::move(t))));
  return arr;
}

Napi::Value FromIValue(const Napi::Env& env, const c10::IValue& v) {
  if (v.isTensor()) return TensorResult(env, v.toTensor());
  if (v.isTensorList()) {
    auto list = v.toTensorList();
    auto arr = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); i++) arr.Set(i, TensorResult(env, list.get(i)));
    return arr;
  }
  if (v.isTuple()) {
    const auto& elems = v.toTupleRef().elements();
    auto arr = Napi::Array::New(env, elems.size());
    for (size_t i = 0; i < elems.size(); i++) arr.Set(i, FromIValue(env, elems[i]));
    return arr;
  }
  if (v.isInt()) return Napi::Number::New(env, static_cast<double>(v.toInt()));
  if (v.isDouble()) return Napi::Number::New(env, v.toDouble());
  if (v.isBool()) return Napi::Boolean::New(env, v.toBool());
  if (v.isNone()) return env.Null();
  if (v.isScalar()) return Napi::Number::New(env, v.toScalar().toDouble());
  throw Napi::TypeError::New(env, "unsupported return type " + v.tagKind());
}

// op(name, overload) -> handle
Napi::Value Op(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  std::string name = info[0].As<Napi::String>();
  std::string overload = info[1].As<Napi::String>();
  auto handle = c10::Dispatcher::singleton().findSchema({name, overload});
  if (!handle) throw Napi::Error::New(env, "libtorch has no operator " + name + (overload.empty() ? "" : "." + overload));
  ops.push_back(*handle);
  return Napi::Number::New(env, ops.size() - 1);
}

// Under bf16-true, an operator's floating operands meet in one dtype before it runs, as they do in a
// PyTorch model held in torch.bfloat16, where a mask or rotary table is made in the model's dtype: where
// one is bfloat16 (a weight, an activation), float32 ones (JS made them) are cast to bfloat16; an
// in-place operator's in its target's dtype (index_add_, scatter_ and add_ keep their self's). Without
// this ATen refuses mixed dtypes outright in matmul, layer_norm, scatter and index_put. 0-dim tensors
// (JS's scalars) stay float32: ATen lets them mix without changing the result's dtype. A softmax
// backward's input_dtype follows.
void MeetInBf16(const c10::FunctionSchema& schema, torch::jit::Stack& stack) {
  auto floating = [](const at::Tensor& t) { return t.defined() && t.dim() > 0 && (t.scalar_type() == at::kFloat || t.scalar_type() == at::kBFloat16); };
  c10::optional<at::ScalarType> to;
  const auto& name = schema.name();
  const bool in_place = !name.empty() && name.back() == '_';
  if (in_place && !stack.empty() && stack[0].isTensor() && floating(stack[0].toTensor())) {
    to = stack[0].toTensor().scalar_type();
  } else {
    for (const auto& v : stack) {
      if (v.isTensor() && floating(v.toTensor()) && v.toTensor().scalar_type() == at::kBFloat16) to = at::kBFloat16;
      if (v.isTensorList()) for (const at::Tensor& t : v.toTensorList().vec()) if (floating(t) && t.scalar_type() == at::kBFloat16) to = at::kBFloat16;
    }
  }
  if (!to) return;
  auto cast = [&](const at::Tensor& t) { return floating(t) && t.scalar_type() != *to ? t.to(*to) : t; };
  const auto& formal = schema.arguments();
  for (size_t i = in_place ? 1 : 0; i < stack.size(); i++) {
    auto& v = stack[i];
    if (v.isTensor()) {
      v = cast(v.toTensor());
    } else if (v.isTensorList()) {
      std::vector<at::Tensor> ts;
      for (const at::Tensor& t : v.toTensorList().vec()) ts.push_back(cast(t));
      v = c10::List<at::Tensor>(ts);
    } else if (v.isInt() && i < formal.size() && formal[i].name() == "input_dtype") {
      v = static_cast<int64_t>(*to);
    }
  }
}

// call(handle, args[]) -> result: a tensor id, an array, a number, a boolean or null
Napi::Value Call(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  const auto& op = ops.at(info[0].As<Napi::Number>().Uint32Value());
  auto args = info[1].As<Napi::Array>();
  const auto& schema = op.schema();
  const auto& formal = schema.arguments();
  if (args.Length() > formal.size()) {
    throw Napi::Error::New(env, schema.name() + ": " + std::to_string(args.Length()) + " arguments for " +
                                    std::to_string(formal.size()) + " parameters");
  }
  torch::jit::Stack stack;
  stack.reserve(formal.size());
  for (size_t i = 0; i < formal.size(); i++) {
    Napi::Value a = i < args.Length() ? args.Get(i) : env.Undefined();
    if (a.IsUndefined()) {
      if (!formal[i].default_value()) {
        throw Napi::Error::New(env, schema.name() + ": missing argument '" + formal[i].name() + "'");
      }
      stack.push_back(*formal[i].default_value());
    } else {
      stack.push_back(ToIValue(env, a, formal[i].type()));
    }
  }
  if (gta::bf16_true) MeetInBf16(schema, stack);
  try {
    op.callBoxed(&stack);
  } catch (const c10::Error& e) {
    throw Napi::Error::New(env, schema.name() + ": " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, schema.name() + ": " + e.what());
  }
  if (stack.size() == 1) return FromIValue(env, stack[0]);
  auto arr = Napi::Array::New(env, stack.size());
  for (size_t i = 0; i < stack.size(); i++) arr.Set(i, FromIValue(env, stack[i]));
  return arr;
}

// fromArray(typedArray, shape, dtypeCode, device) -> [id, dtype, ...shape]; copies the values
Napi::Value FromArray(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto ta = info[0].As<Napi::TypedArray>();
  auto shape = IntList(env, info[1]);
  auto dtype = DtypeOf(info[2].As<Napi::Number>().Int32Value());
  std::string device = info[3].As<Napi::String>();
  auto t = at::empty(shape, at::TensorOptions().dtype(dtype));
  size_t bytes = t.numel() * t.element_size();
  if (ta.ByteLength() != bytes) {
    throw Napi::Error::New(env, "fromArray: " + std::to_string(ta.ByteLength()) + " bytes for a tensor of " +
                                    std::to_string(bytes));
  }
  const uint8_t* src = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  if (bytes > 0) std::memcpy(t.data_ptr(), src, bytes);
  if (device != "cpu") t = t.to(c10::Device(device));
  return TensorResult(env, std::move(t));
}

// toArray(id) -> a new Float32Array, Int32Array or Uint8Array (bool) with the values, row-major
Napi::Value ToArray(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  at::Tensor t = Get(env, info[0]).to(at::kCPU).contiguous();
  // data kept in bfloat16 (toBf16) reads as the float32 tfjs knows it by
  if (t.scalar_type() == at::kBFloat16) t = t.to(at::kFloat);
  size_t n = t.numel();
  switch (t.scalar_type()) {
    case at::kFloat: {
      auto out = Napi::Float32Array::New(env, n);
      if (n) std::memcpy(out.Data(), t.data_ptr(), n * 4);
      return out;
    }
    case at::kInt: {
      auto out = Napi::Int32Array::New(env, n);
      if (n) std::memcpy(out.Data(), t.data_ptr(), n * 4);
      return out;
    }
    case at::kBool: {
      auto out = Napi::Uint8Array::New(env, n);
      if (n) std::memcpy(out.Data(), t.data_ptr(), n);
      return out;
    }
    default:
      throw Napi::Error::New(env, std::string("toArray: unsupported dtype ") + c10::toString(t.scalar_type()));
  }
}

Napi::Value Free(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  Get(env, info[0]);
  int32_t id = info[0].As<Napi::Number>().Int32Value();
  Release(slots[id]);
  slots[id] = at::Tensor();
  free_slots.push_back(id);
  return env.Undefined();
}

// memory(reset?) -> { live, peak, storages }: bytes the slots hold now and at most since the last
// reset (reset: true starts a new peak from now).
Napi::Value Memory(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto out = Napi::Object::New(env);
  out.Set("live", Napi::Number::New(env, static_cast<double>(live_bytes)));
  out.Set("peak", Napi::Number::New(env, static_cast<double>(peak_bytes)));
  out.Set("storages", Napi::Number::New(env, static_cast<double>(held.size())));
  if (info.Length() > 0 && info[0].ToBoolean().Value()) peak_bytes = live_bytes;
  return out;
}

Napi::Value LiveTensors(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), slots.size() - free_slots.size());
}

// setThreads(n, big?): n threads from now on, and `big` for big work (threads.cc; 0 or absent: none).
Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  at::set_num_threads(info[0].As<Napi::Number>().Int32Value());
  if (info.Length() > 1 && info[1].IsNumber()) gta::SetBigThreads(info[1].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

// product(a, b) -> at::matmul(a, b), as big work when it is one (the BatchMatMul kernel on the CPU).
Napi::Value Product(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return gta::Guard(env, "product", [&] { return TensorToJs(env, gta::Product(TensorOf(env, info[0]), TensorOf(env, info[1]))); });
}

// setPrecision('bf16' | 'bf16-true' | 'fp32'): products in bfloat16 from now on (bf16-true: and their
// results kept in bfloat16), or in float32 (precision.cc).
Napi::Value SetPrecision(const Napi::CallbackInfo& info) {
  const std::string p = info[0].As<Napi::String>().Utf8Value();
  gta::bf16_products = p == "bf16" || p == "bf16-true";
  gta::bf16_true = p == "bf16-true";
  return info.Env().Undefined();
}

// toBf16(ids): these tensors' data from now on in bfloat16, in place of float32 (a LoRA run's frozen
// weights under train.precision bf16: src/backend/torch/precision.ts). JS still knows them as float32:
// operators promote them, products take them as they are, toArray converts.
Napi::Value ToBf16(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto ids = info[0].As<Napi::Array>();
  for (uint32_t i = 0; i < ids.Length(); i++) {
    const at::Tensor& t = Get(env, ids.Get(i));
    if (t.scalar_type() != at::kFloat) continue;
    at::Tensor b = t.to(at::kBFloat16);
    Release(t);
    Hold(b);
    slots[ids.Get(i).As<Napi::Number>().Int32Value()] = std::move(b);
  }
  return env.Undefined();
}

// copyInto(dst, src): src's values written into dst's own storage, in dst's dtype (a bfloat16-stored
// weight or moment stays so), and dst's kept bfloat16 copy dropped: new values for a variable (a
// broadcast's, a resumed optimizer's) without tfjs's assign, which would give it float32 storage again.
Napi::Value CopyInto(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return gta::Guard(env, "copyInto", [&] {
    at::Tensor dst = Get(env, info[0]);
    dst.copy_(Get(env, info[1]));
    gta::WeightChanged(dst);
    return env.Undefined();
  });
}

// keepBf16Copies(ids): these weights keep their bfloat16 copies between products (precision.cc).
Napi::Value KeepBf16Copies(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return gta::Guard(env, "keepBf16Copies", [&] {
    gta::KeepBf16Copies(gta::Tensors(env, "keepBf16Copies", info[0]));
    return env.Undefined();
  });
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto out = Napi::Object::New(env);
  out.Set("version", TORCH_VERSION);
  out.Set("threads", at::get_num_threads());
  out.Set("parallel", at::get_parallel_info());
  out.Set("config", at::show_config());
  out.Set("splitPasses", static_cast<double>(gta::split_passes));
  out.Set("cudaDevices", static_cast<double>(at::hasCUDA() ? c10::impl::getDeviceGuardImpl(at::kCUDA)->deviceCount() : 0));
  return out;
}

// glibc serves each block above its mmap threshold (dynamic, at most 32 MB) with fresh pages from the
// kernel and returns them on free, so every [2048, 4096] logits tensor of an LM step (33.5 MB) paid a
// page fault per 4 KB, each time: its matmul took 22.7 ms instead of 11.8 and adding a bias to it
// 11.3 ms instead of 2.5, on one core of the workstation. Serving big blocks from the heap and keeping
// the heap's top lets freed tensors' memory be reused, as PyTorch's caching allocator does on a GPU.
// The cost: memory freed after a peak stays with the process. glibc's own MALLOC_MMAP_THRESHOLD_ and
// MALLOC_TRIM_THRESHOLD_, when set, win.
void KeepBigBlocks() {
#ifdef __GLIBC__
  constexpr int kBig = 1 << 30;
  if (!std::getenv("MALLOC_MMAP_THRESHOLD_")) mallopt(M_MMAP_THRESHOLD, kBig);
  if (!std::getenv("MALLOC_TRIM_THRESHOLD_")) mallopt(M_TRIM_THRESHOLD, kBig);
#endif
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  KeepBigBlocks();
  inference_mode = std::make_unique<c10::InferenceMode>();
  exports.Set("op", Napi::Function::New(env, Op));
  exports.Set("call", Napi::Function::New(env, Call));
  exports.Set("fromArray", Napi::Function::New(env, FromArray));
  exports.Set("toArray", Napi::Function::New(env, ToArray));
  exports.Set("free", Napi::Function::New(env, Free));
  exports.Set("liveTensors", Napi::Function::New(env, LiveTensors));
  exports.Set("memory", Napi::Function::New(env, Memory));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("product", Napi::Function::New(env, Product));
  exports.Set("setPrecision", Napi::Function::New(env, SetPrecision));
  exports.Set("keepBf16Copies", Napi::Function::New(env, KeepBf16Copies));
  exports.Set("toBf16", Napi::Function::New(env, ToBf16));
  exports.Set("copyInto", Napi::Function::New(env, CopyInto));
  exports.Set("info", Napi::Function::New(env, Info));
  RegisterDist(env, exports);
  RegisterDecodeStep(env, exports);
  RegisterTrainPass(env, exports);
  RegisterGradStats(env, exports);
  RegisterAdamW(env, exports);
  RegisterLogProbs(env, exports);
  return exports;
}

}  // namespace

// The tensor behind a JS tensor id, and a tensor handed to JS, for the other files of the addon (gta_arch.h).
const at::Tensor& TensorOf(const Napi::Env& env, const Napi::Value& v) {
  return Get(env, v);
}

Napi::Value TensorToJs(const Napi::Env& env, at::Tensor t) {
  return TensorResult(env, std::move(t));
}

NODE_API_MODULE(gta_torch, Init)
