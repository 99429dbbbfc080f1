// N-API addon of the SparseLoCo codec. Arguments are checked here (shapes against buffer
// lengths), then the C ABI runs directly on the memory of the caller's TypedArrays (no
// copies), either on the calling thread or on the libuv pool (the promise variants, which
// hold references to every buffer until they settle).
#include <napi.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "covenant_codec.h"

namespace {

struct Spec {
  std::vector<std::string> names;
  std::vector<covenant_tensor> tensors;
  std::vector<size_t> numel;
  covenant_config config{};
};

Napi::Error codec_error(Napi::Env env, int32_t code, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, covenant_status_name(code)));
  e.Set("status", Napi::Number::New(env, code));
  return e;
}

[[noreturn]] void throw_type(Napi::Env env, const std::string& message) {
  throw Napi::TypeError::New(env, message);
}

uint32_t get_u32(Napi::Env env, Napi::Object o, const char* key, uint32_t fallback, bool required) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() && !required) return fallback;
  if (!v.IsNumber()) throw_type(env, std::string("config.") + key + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 4294967295.0) || d != double(uint64_t(d)))
    throw_type(env, std::string("config.") + key + " must be a non-negative integer");
  return uint32_t(d);
}

Spec parse_spec(Napi::Env env, Napi::Value spec_v, Napi::Value config_v) {
  if (!spec_v.IsArray()) throw_type(env, "spec must be an array of { name, shape }");
  if (!config_v.IsObject()) throw_type(env, "config must be an object");
  Napi::Array arr = spec_v.As<Napi::Array>();
  Spec s;
  s.names.resize(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value ev = arr.Get(i);
    if (!ev.IsObject()) throw_type(env, "spec[" + std::to_string(i) + "] must be an object");
    Napi::Object e = ev.As<Napi::Object>();
    if (!e.Get("name").IsString())
      throw_type(env, "spec[" + std::to_string(i) + "].name must be a string");
    s.names[i] = e.Get("name").As<Napi::String>().Utf8Value();
    Napi::Value shape_v = e.Get("shape");
    if (!shape_v.IsArray()) throw_type(env, s.names[i] + ": shape must be an array");
    Napi::Array shape = shape_v.As<Napi::Array>();
    if (shape.Length() < 1 || shape.Length() > 2)
      throw_type(env, s.names[i] + ": shape must have 1 or 2 dimensions");
    covenant_tensor t{};
    t.rank = shape.Length();
    size_t n = 1;
    for (uint32_t d = 0; d < t.rank; ++d) {
      Napi::Value dv = shape.Get(d);
      double x = dv.IsNumber() ? dv.As<Napi::Number>().DoubleValue() : -1;
      if (!(x >= 1 && x <= 4294967295.0) || x != double(uint64_t(x)))
        throw_type(env, s.names[i] + ": dimensions must be positive integers");
      t.dims[d] = uint32_t(x);
      n *= size_t(x);
    }
    s.tensors.push_back(t);
    s.numel.push_back(n);
  }
  for (size_t i = 0; i < s.tensors.size(); ++i) s.tensors[i].name = s.names[i].c_str();
  Napi::Object c = config_v.As<Napi::Object>();
  s.config.format = get_u32(env, c, "format", 0, true);
  s.config.topk = get_u32(env, c, "topk", 0, true);
  Napi::Value beta = c.Get("beta");
  s.config.beta =
      beta.IsUndefined() ? 0.95f : (beta.IsNumber() ? beta.As<Napi::Number>().FloatValue() : -1.0f);
  Napi::Value max_abs = c.Get("maxAbs");
  s.config.max_abs = max_abs.IsNumber() ? max_abs.As<Napi::Number>().FloatValue() : 0.0f;
  s.config.threads = get_u32(env, c, "threads", 0, false);
  return s;
}

// Keeps the JS buffers alive while native code uses their memory.
struct Pins {
  std::vector<Napi::ObjectReference> refs;
  void pin(Napi::Object o) { refs.push_back(Napi::Persistent(o)); }
};

template <class T>
T* typed_data(Napi::Env env, Napi::Value v, napi_typedarray_type type, size_t want,
              const std::string& what, Pins* pins) {
  if (!v.IsTypedArray()) throw_type(env, what + " must be a TypedArray");
  Napi::TypedArray ta = v.As<Napi::TypedArray>();
  if (ta.TypedArrayType() != type) throw_type(env, what + " has the wrong element type");
  if (ta.ElementLength() != want)
    throw Napi::RangeError::New(env, what + " holds " + std::to_string(ta.ElementLength()) +
                                         " elements, expected " + std::to_string(want));
  pins->pin(ta);
  return reinterpret_cast<T*>(static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset());
}

Napi::Array get_array(Napi::Env env, Napi::Value v, size_t want, const std::string& what) {
  if (!v.IsArray()) throw_type(env, what + " must be an array");
  Napi::Array a = v.As<Napi::Array>();
  if (a.Length() != want)
    throw Napi::RangeError::New(env, what + " has " + std::to_string(a.Length()) +
                                         " entries, expected " + std::to_string(want));
  return a;
}

// A codec call prepared on the JS thread, run synchronously or on the pool.
struct Job {
  Spec spec;
  Pins pins;
  covenant_error err{};
  int32_t rc = 0;
  virtual ~Job() = default;
  virtual void run() = 0;
  virtual Napi::Value result(Napi::Env env) = 0;
};

class Worker : public Napi::AsyncWorker {
 public:
  Worker(Napi::Env env, std::unique_ptr<Job> job)
      : Napi::AsyncWorker(env),
        job_(std::move(job)),
        deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override { job_->run(); }
  void OnOK() override {
    Napi::Env env = Env();
    if (job_->rc != COVENANT_OK) {
      deferred_.Reject(codec_error(env, job_->rc, job_->err.message).Value());
    } else {
      deferred_.Resolve(job_->result(env));
    }
  }

 private:
  std::unique_ptr<Job> job_;
  Napi::Promise::Deferred deferred_;
};

Napi::Value finish(const Napi::CallbackInfo& info, std::unique_ptr<Job> job, size_t async_arg) {
  Napi::Env env = info.Env();
  bool async = info.Length() > async_arg && info[async_arg].ToBoolean().Value();
  if (async) {
    auto* w = new Worker(env, std::move(job));
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
  }
  job->run();
  if (job->rc != COVENANT_OK) throw codec_error(env, job->rc, job->err.message);
  return job->result(env);
}

struct CompressJob : Job {
  covenant_dtype dtype = COVENANT_F32;
  std::vector<const void*> deltas;
  std::vector<float*> errors;
  uint8_t* out = nullptr;
  size_t capacity = 0, length = 0;
  void run() override {
    rc = covenant_compress(spec.tensors.data(), spec.tensors.size(), &spec.config, dtype,
                           deltas.data(), errors.data(), out, capacity, &length, &err);
  }
  Napi::Value result(Napi::Env env) override { return Napi::Number::New(env, double(length)); }
};

// compress(spec, config, deltas[], errors[], out: Uint8Array, async?) -> bytes written
Napi::Value Compress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto job = std::make_unique<CompressJob>();
  job->spec = parse_spec(env, info[0], info[1]);
  const size_t n = job->spec.tensors.size();
  Napi::Array deltas = get_array(env, info[2], n, "deltas");
  Napi::Array errors = get_array(env, info[3], n, "errors");
  for (uint32_t i = 0; i < n; ++i) {
    const std::string& name = job->spec.names[i];
    Napi::Value d = deltas.Get(i);
    bool bf16 = d.IsTypedArray() && d.As<Napi::TypedArray>().TypedArrayType() == napi_uint16_array;
    if (i == 0) job->dtype = bf16 ? COVENANT_BF16 : COVENANT_F32;
    if (bf16 != (job->dtype == COVENANT_BF16))
      throw_type(env, "deltas must all be Float32Array or all Uint16Array");
    job->deltas.push_back(
        bf16
            ? static_cast<const void*>(typed_data<uint16_t>(
                  env, d, napi_uint16_array, job->spec.numel[i], "delta of " + name, &job->pins))
            : static_cast<const void*>(typed_data<float>(
                  env, d, napi_float32_array, job->spec.numel[i], "delta of " + name, &job->pins)));
    job->errors.push_back(typed_data<float>(env, errors.Get(i), napi_float32_array,
                                            job->spec.numel[i], "error of " + name, &job->pins));
  }
  if (!info[4].IsTypedArray() ||
      info[4].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw_type(env, "out must be a Uint8Array");
  Napi::TypedArray out = info[4].As<Napi::TypedArray>();
  job->capacity = out.ElementLength();
  job->out = static_cast<uint8_t*>(out.ArrayBuffer().Data()) + out.ByteOffset();
  job->pins.pin(out);
  return finish(info, std::move(job), 5);
}

Napi::Value PayloadSize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Spec s = parse_spec(env, info[0], info[1]);
  uint64_t size = 0;
  covenant_error err{};
  int32_t rc = covenant_payload_size(s.tensors.data(), s.tensors.size(), &s.config, &size, &err);
  if (rc != COVENANT_OK) throw codec_error(env, rc, err.message);
  return Napi::Number::New(env, double(size));
}

const uint8_t* bytes_of(Napi::Env env, Napi::Value v, size_t* length, const std::string& what,
                        Pins* pins) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw_type(env, what + " must be a Uint8Array");
  Napi::TypedArray ta = v.As<Napi::TypedArray>();
  *length = ta.ElementLength();
  pins->pin(ta);
  return static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
}

// validate(spec, config, payload) -> undefined, throws on a bad payload
Napi::Value Validate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Spec s = parse_spec(env, info[0], info[1]);
  Pins pins;
  size_t len = 0;
  const uint8_t* p = bytes_of(env, info[2], &len, "payload", &pins);
  covenant_error err{};
  int32_t rc = covenant_validate(s.tensors.data(), s.tensors.size(), &s.config, p, len, &err);
  if (rc != COVENANT_OK) throw codec_error(env, rc, err.message);
  return env.Undefined();
}

struct DecodeJob : Job {
  const uint8_t* payload = nullptr;
  size_t length = 0;
  std::vector<float*> out;
  void run() override {
    rc = covenant_decode(spec.tensors.data(), spec.tensors.size(), &spec.config, payload, length,
                         out.data(), &err);
  }
  Napi::Value result(Napi::Env env) override { return env.Undefined(); }
};

// decode(spec, config, payload, out[], async?)
Napi::Value Decode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto job = std::make_unique<DecodeJob>();
  job->spec = parse_spec(env, info[0], info[1]);
  job->payload = bytes_of(env, info[2], &job->length, "payload", &job->pins);
  Napi::Array out = get_array(env, info[3], job->spec.tensors.size(), "out");
  for (uint32_t i = 0; i < out.Length(); ++i)
    job->out.push_back(typed_data<float>(env, out.Get(i), napi_float32_array, job->spec.numel[i],
                                         "output of " + job->spec.names[i], &job->pins));
  return finish(info, std::move(job), 4);
}

struct AggregateJob : Job {
  std::vector<const uint8_t*> payloads;
  std::vector<size_t> lengths;
  std::vector<float*> theta;
  std::vector<int32_t> status;
  float lr = 0;
  covenant_aggregate_report report{};
  void run() override {
    status.assign(payloads.size(), 0);
    rc = covenant_aggregate(spec.tensors.data(), spec.tensors.size(), &spec.config, payloads.data(),
                            lengths.data(), payloads.size(), lr, theta.data(), status.data(),
                            &report, &err);
  }
  Napi::Value result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("accepted", double(report.accepted));
    o.Set("rejected", double(report.rejected));
    o.Set("updated", double(report.updated));
    o.Set("skippedNonFinite", double(report.skipped_nonfinite));
    Napi::Array st = Napi::Array::New(env, status.size());
    for (uint32_t i = 0; i < status.size(); ++i) st.Set(i, covenant_status_name(status[i]));
    o.Set("payloadStatus", st);
    return o;
  }
};

// aggregate(spec, config, payloads[], lr, theta[], async?) -> report
Napi::Value Aggregate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto job = std::make_unique<AggregateJob>();
  job->spec = parse_spec(env, info[0], info[1]);
  if (!info[2].IsArray()) throw_type(env, "payloads must be an array of Uint8Array");
  Napi::Array payloads = info[2].As<Napi::Array>();
  for (uint32_t i = 0; i < payloads.Length(); ++i) {
    size_t len = 0;
    job->payloads.push_back(
        bytes_of(env, payloads.Get(i), &len, "payloads[" + std::to_string(i) + "]", &job->pins));
    job->lengths.push_back(len);
  }
  if (!info[3].IsNumber()) throw_type(env, "lr must be a number");
  job->lr = info[3].As<Napi::Number>().FloatValue();
  Napi::Array theta = get_array(env, info[4], job->spec.tensors.size(), "theta");
  for (uint32_t i = 0; i < theta.Length(); ++i)
    job->theta.push_back(typed_data<float>(env, theta.Get(i), napi_float32_array,
                                           job->spec.numel[i], "theta of " + job->spec.names[i],
                                           &job->pins));
  return finish(info, std::move(job), 5);
}

Napi::Value CudaAvailable(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), covenant_cuda_available() != 0);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("payloadSize", Napi::Function::New(env, PayloadSize));
  exports.Set("compress", Napi::Function::New(env, Compress));
  exports.Set("validate", Napi::Function::New(env, Validate));
  exports.Set("decode", Napi::Function::New(env, Decode));
  exports.Set("aggregate", Napi::Function::New(env, Aggregate));
  exports.Set("cudaAvailable", Napi::Function::New(env, CudaAvailable));
  exports.Set("wireVersion", Napi::Number::New(env, COVENANT_WIRE_VERSION));
  return exports;
}

}  // namespace

NODE_API_MODULE(covenant_codec, Init)
