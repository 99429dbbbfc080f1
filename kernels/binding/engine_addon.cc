// N-API addon over the training engine: the worker's handle on the model, its optimizer,
// its shards and its checkpoints. Training runs off the JavaScript thread; while it runs, every
// other call on the same engine is refused rather than racing it.
#include <napi.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "config.h"
#include "trainer.h"

using namespace covenant::engine;

namespace {

double num_field(const Napi::Object& o, const char* key, double def) {
  if (!o.Has(key) || o.Get(key).IsUndefined()) return def;
  const Napi::Value v = o.Get(key);
  if (!v.IsNumber()) {
    throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a number");
  }
  return v.As<Napi::Number>().DoubleValue();
}

int int_field(const Napi::Object& o, const char* key, int def) {
  const double d = num_field(o, key, def);
  if (d != double(int(d))) {
    throw Napi::TypeError::New(o.Env(),
                               std::string(key) + " must be an integer, got " + std::to_string(d));
  }
  return int(d);
}

uint64_t seed_field(const Napi::Object& o, const char* key) {
  if (!o.Has(key) || o.Get(key).IsUndefined()) return 0;
  const Napi::Value v = o.Get(key);
  if (v.IsBigInt()) {
    bool lossless = false;
    return v.As<Napi::BigInt>().Uint64Value(&lossless);
  }
  const double d = num_field(o, key, 0);
  if (d < 0 || d > 9007199254740991.0 || d != double(uint64_t(d))) {
    throw Napi::TypeError::New(
        o.Env(), std::string(key) + " must be a non-negative safe integer or a bigint");
  }
  return uint64_t(d);
}

ModelConfig model_config(const Napi::Value& v) {
  const Napi::Env env = v.Env();
  ModelConfig c;
  if (v.IsString()) {
    if (!preset(v.As<Napi::String>().Utf8Value(), &c)) {
      throw Napi::Error::New(env,
                             "unknown model preset \"" + v.As<Napi::String>().Utf8Value() + "\"");
    }
    return c;
  }
  if (!v.IsObject())
    throw Napi::TypeError::New(env, "model must be a preset name or a config object");
  const Napi::Object o = v.As<Napi::Object>();
  if (o.Has("preset") && o.Get("preset").IsString()) {
    const std::string name = o.Get("preset").As<Napi::String>().Utf8Value();
    if (!preset(name, &c)) throw Napi::Error::New(env, "unknown model preset \"" + name + "\"");
  }
  if (o.Has("name") && o.Get("name").IsString())
    c.name = o.Get("name").As<Napi::String>().Utf8Value();
  c.vocab_size = int_field(o, "vocabSize", c.vocab_size);
  c.dim = int_field(o, "dim", c.dim);
  c.n_layers = int_field(o, "nLayers", c.n_layers);
  c.n_heads = int_field(o, "nHeads", c.n_heads);
  c.n_kv_heads = int_field(o, "nKvHeads", c.n_kv_heads);
  c.ffn_dim = int_field(o, "ffnDim", c.ffn_dim);
  c.max_seq_len = int_field(o, "maxSeqLen", c.max_seq_len);
  c.rope_theta = float(num_field(o, "ropeTheta", c.rope_theta));
  c.norm_eps = float(num_field(o, "normEps", c.norm_eps));
  const std::string err = c.validate();
  if (!err.empty()) throw Napi::Error::New(env, "model config: " + err);
  return c;
}

Napi::Object config_to_js(Napi::Env env, const ModelConfig& c) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", c.name);
  o.Set("vocabSize", c.vocab_size);
  o.Set("dim", c.dim);
  o.Set("nLayers", c.n_layers);
  o.Set("nHeads", c.n_heads);
  o.Set("nKvHeads", c.n_kv_heads);
  o.Set("ffnDim", c.ffn_dim);
  o.Set("maxSeqLen", c.max_seq_len);
  o.Set("ropeTheta", c.rope_theta);
  o.Set("normEps", c.norm_eps);
  return o;
}

Napi::Object step_to_js(Napi::Env env, const StepResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("step", double(r.step));
  o.Set("loss", r.loss);
  o.Set("lr", r.lr);
  o.Set("gradNorm", r.grad_norm);
  return o;
}

class EngineWrap;

class TrainWorker : public Napi::AsyncProgressQueueWorker<StepResult> {
 public:
  TrainWorker(Napi::Env env, EngineWrap* engine, Napi::Object self, int steps,
              Napi::Function progress);
  void Execute(const ExecutionProgress& progress) override;
  void OnProgress(const StepResult* data, size_t count) override;
  void OnOK() override;
  void OnError(const Napi::Error& e) override;
  Napi::Promise promise() { return deferred_.Promise(); }

 private:
  EngineWrap* engine_;
  Napi::ObjectReference self_;
  int steps_;
  Napi::FunctionReference progress_;
  std::vector<StepResult> results_;
  Napi::Promise::Deferred deferred_;
};

class EngineWrap : public Napi::ObjectWrap<EngineWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(
        env, "Engine",
        {InstanceMethod("attachShard", &EngineWrap::AttachShard),
         InstanceMethod("detachShards", &EngineWrap::DetachShards),
         InstanceMethod("train", &EngineWrap::Train),
         InstanceMethod("evalLoss", &EngineWrap::EvalLoss),
         InstanceMethod("parameterInfo", &EngineWrap::ParameterInfo),
         InstanceMethod("getParameter", &EngineWrap::GetParameter),
         InstanceMethod("setParameter", &EngineWrap::SetParameter),
         InstanceMethod("applyOuterStep", &EngineWrap::ApplyOuterStep),
         InstanceMethod("save", &EngineWrap::Save), InstanceMethod("load", &EngineWrap::Load),
         InstanceMethod("step", &EngineWrap::Step), InstanceMethod("config", &EngineWrap::Config)});
  }

  // new Engine(model, optim, train)
  explicit EngineWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EngineWrap>(info) {
    const Napi::Env env = info.Env();
    const ModelConfig mc = model_config(info[0]);
    const Napi::Object oo =
        info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
    const Napi::Object to =
        info[2].IsObject() ? info[2].As<Napi::Object>() : Napi::Object::New(env);
    OptimConfig oc;
    oc.lr = float(num_field(oo, "lr", oc.lr));
    oc.min_lr_ratio = float(num_field(oo, "minLrRatio", oc.min_lr_ratio));
    oc.warmup_steps = int64_t(num_field(oo, "warmupSteps", double(oc.warmup_steps)));
    oc.total_steps = int64_t(num_field(oo, "totalSteps", double(oc.total_steps)));
    oc.beta1 = float(num_field(oo, "beta1", oc.beta1));
    oc.beta2 = float(num_field(oo, "beta2", oc.beta2));
    oc.eps = float(num_field(oo, "eps", oc.eps));
    oc.weight_decay = float(num_field(oo, "weightDecay", oc.weight_decay));
    oc.grad_clip = float(num_field(oo, "gradClip", oc.grad_clip));
    TrainConfig tc;
    tc.batch = int_field(to, "batch", tc.batch);
    tc.seq_len = int_field(to, "seqLen", tc.seq_len);
    tc.grad_accum = int_field(to, "gradAccum", tc.grad_accum);
    tc.seed = seed_field(to, "seed");
    tc.data_seed = seed_field(to, "dataSeed");
    try {
      trainer_ = std::make_unique<Trainer>(mc, oc, tc);
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, e.what());
    }
  }

  Trainer& trainer() { return *trainer_; }
  std::atomic<bool> busy{false};

 private:
  void idle(const Napi::Env& env) {
    if (busy) throw Napi::Error::New(env, "engine is busy training; wait for train() to settle");
  }
  static void check(const Napi::Env& env, const std::string& err) {
    if (!err.empty()) throw Napi::Error::New(env, err);
  }
  const ParamInfo& param(const Napi::Env& env, const Napi::Value& name) {
    if (!name.IsString()) throw Napi::TypeError::New(env, "parameter name must be a string");
    const ParamInfo* p = trainer_->model().find(name.As<Napi::String>().Utf8Value());
    if (!p)
      throw Napi::Error::New(env, "no parameter named " + name.As<Napi::String>().Utf8Value());
    return *p;
  }
  static std::string path_arg(const Napi::CallbackInfo& info, size_t i) {
    if (!info[i].IsString()) throw Napi::TypeError::New(info.Env(), "path must be a string");
    return info[i].As<Napi::String>().Utf8Value();
  }

  Napi::Value AttachShard(const Napi::CallbackInfo& info) {
    idle(info.Env());
    if (!info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "shard id must be a number");
    const double id = info[0].As<Napi::Number>().DoubleValue();
    if (id < 0 || id != double(uint64_t(id))) {
      throw Napi::TypeError::New(info.Env(), "shard id must be a non-negative integer");
    }
    check(info.Env(), trainer_->attach_shard(uint64_t(id), path_arg(info, 1)));
    return Napi::Number::New(info.Env(), double(trainer_->attached()));
  }
  Napi::Value DetachShards(const Napi::CallbackInfo& info) {
    idle(info.Env());
    trainer_->detach_all();
    return info.Env().Undefined();
  }
  Napi::Value Train(const Napi::CallbackInfo& info) {
    const Napi::Env env = info.Env();
    idle(env);
    if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "steps must be a number");
    const double steps = info[0].As<Napi::Number>().DoubleValue();
    if (steps < 1 || steps > 1e9 || steps != double(int(steps))) {
      throw Napi::RangeError::New(env, "steps must be an integer >= 1");
    }
    if (trainer_->attached() == 0) throw Napi::Error::New(env, "no shards attached");
    Napi::Function progress =
        info[1].IsFunction() ? info[1].As<Napi::Function>() : Napi::Function();
    busy = true;
    auto* w = new TrainWorker(env, this, info.This().As<Napi::Object>(), int(steps), progress);
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
  }
  Napi::Value EvalLoss(const Napi::CallbackInfo& info) {
    const Napi::Env env = info.Env();
    idle(env);
    if (!info[0].IsTypedArray() ||
        info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
      throw Napi::TypeError::New(env, "tokens must be an Int32Array");
    }
    const Napi::Int32Array t = info[0].As<Napi::Int32Array>();
    const int seq = info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 0;
    if (seq < 1 || seq > trainer_->model().config().max_seq_len) {
      throw Napi::RangeError::New(
          env,
          "seqLen must be in [1, " + std::to_string(trainer_->model().config().max_seq_len) + "]");
    }
    if (t.ElementLength() == 0 || t.ElementLength() % size_t(seq + 1) != 0) {
      throw Napi::RangeError::New(env, "tokens must hold whole sequences of seqLen + 1 tokens");
    }
    try {
      return Napi::Number::New(
          env, trainer_->eval_loss(t.Data(), int(t.ElementLength() / (seq + 1)), seq));
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, e.what());
    }
  }
  Napi::Value ParameterInfo(const Napi::CallbackInfo& info) {
    const Napi::Env env = info.Env();
    const auto& ps = trainer_->model().params();
    Napi::Array out = Napi::Array::New(env, ps.size());
    for (size_t i = 0; i < ps.size(); i++) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", ps[i].name);
      Napi::Array shape = Napi::Array::New(env, ps[i].shape.size());
      for (size_t d = 0; d < ps[i].shape.size(); d++)
        shape.Set(uint32_t(d), double(ps[i].shape[d]));
      o.Set("shape", shape);
      out.Set(uint32_t(i), o);
    }
    return out;
  }
  Napi::Value GetParameter(const Napi::CallbackInfo& info) {
    idle(info.Env());
    const ParamInfo& p = param(info.Env(), info[0]);
    Napi::Float32Array a = Napi::Float32Array::New(info.Env(), p.numel);
    std::memcpy(a.Data(), trainer_->model().weights() + p.offset, sizeof(float) * p.numel);
    return a;
  }
  Napi::Float32Array floats(const Napi::Env& env, const Napi::Value& v, const ParamInfo& p) {
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
      throw Napi::TypeError::New(env, p.name + ": values must be a Float32Array");
    }
    Napi::Float32Array a = v.As<Napi::Float32Array>();
    if (a.ElementLength() != p.numel) {
      throw Napi::RangeError::New(env, p.name + ": expected " + std::to_string(p.numel) +
                                           " values, got " + std::to_string(a.ElementLength()));
    }
    return a;
  }
  Napi::Value SetParameter(const Napi::CallbackInfo& info) {
    idle(info.Env());
    const ParamInfo& p = param(info.Env(), info[0]);
    Napi::Float32Array a = floats(info.Env(), info[1], p);
    for (size_t i = 0; i < p.numel; i++) {
      if (!std::isfinite(a[i]))
        throw Napi::RangeError::New(info.Env(),
                                    p.name + ": non-finite value at " + std::to_string(i));
    }
    std::memcpy(trainer_->model().weights() + p.offset, a.Data(), sizeof(float) * p.numel);
    return info.Env().Undefined();
  }
  Napi::Value ApplyOuterStep(const Napi::CallbackInfo& info) {
    idle(info.Env());
    const ParamInfo& p = param(info.Env(), info[0]);
    Napi::Float32Array a = floats(info.Env(), info[1], p);
    if (!info[2].IsNumber()) throw Napi::TypeError::New(info.Env(), "lr must be a number");
    check(info.Env(), trainer_->apply_outer_step(p.name, a.Data(), a.ElementLength(),
                                                 info[2].As<Napi::Number>().FloatValue()));
    return info.Env().Undefined();
  }
  Napi::Value Save(const Napi::CallbackInfo& info) {
    idle(info.Env());
    check(info.Env(), trainer_->save(path_arg(info, 0)));
    return info.Env().Undefined();
  }
  Napi::Value Load(const Napi::CallbackInfo& info) {
    idle(info.Env());
    check(info.Env(), trainer_->load(path_arg(info, 0)));
    return info.Env().Undefined();
  }
  Napi::Value Step(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), double(trainer_->step()));
  }
  Napi::Value Config(const Napi::CallbackInfo& info) {
    return config_to_js(info.Env(), trainer_->model().config());
  }

  std::unique_ptr<Trainer> trainer_;
};

TrainWorker::TrainWorker(Napi::Env env, EngineWrap* engine, Napi::Object self, int steps,
                         Napi::Function progress)
    : Napi::AsyncProgressQueueWorker<StepResult>(env),
      engine_(engine),
      self_(Napi::Persistent(self)),
      steps_(steps),
      deferred_(Napi::Promise::Deferred::New(env)) {
  if (!progress.IsEmpty()) progress_ = Napi::Persistent(progress);
}

void TrainWorker::Execute(const ExecutionProgress& progress) {
  try {
    for (int i = 0; i < steps_; i++) {
      const StepResult r = engine_->trainer().train_step();
      results_.push_back(r);
      progress.Send(&r, 1);
    }
  } catch (const std::exception& e) {
    SetError(e.what());
  }
}

void TrainWorker::OnProgress(const StepResult* data, size_t count) {
  if (progress_.IsEmpty()) return;
  Napi::HandleScope scope(Env());
  for (size_t i = 0; i < count; i++) {
    try {
      progress_.Call({step_to_js(Env(), data[i])});
    } catch (const Napi::Error&) {
      // A throwing progress callback must not take the training down; the error is dropped.
    }
  }
}

void TrainWorker::OnOK() {
  engine_->busy = false;
  Napi::Array out = Napi::Array::New(Env(), results_.size());
  for (size_t i = 0; i < results_.size(); i++) out.Set(uint32_t(i), step_to_js(Env(), results_[i]));
  deferred_.Resolve(out);
}

void TrainWorker::OnError(const Napi::Error& e) {
  engine_->busy = false;
  deferred_.Reject(e.Value());
}

Napi::Value Presets(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  for (const std::string& name : preset_names()) {
    ModelConfig c;
    preset(name, &c);
    Napi::Object o = config_to_js(env, c);
    const MemoryEstimate m = estimate_memory(c, 1, c.max_seq_len);
    o.Set("parameters", double(m.parameters));
    o.Set("trainingBytesFp32", double(m.weights_fp32 + m.gradients_fp32 + m.adamw_state));
    out.Set(name, o);
  }
  return out;
}

Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  exports.Set("Engine", EngineWrap::Init(env));
  exports.Set("presets", Napi::Function::New(env, Presets));
  return exports;
}

}  // namespace

NODE_API_MODULE(covenant_engine, InitModule)
