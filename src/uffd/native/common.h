// Shared helpers of the native addon. The addon is mechanism only: it trusts the
// TypeScript wrapper to have checked alignment and policy, and turns every failed
// syscall into an Error whose `code` is the errno name.
#pragma once
#include <napi.h>
#include <cerrno>
#include <cstdint>
#include <string>

namespace naplus {

// Throws a JS Error with `code` (e.g. "EINVAL"), `errno` and `syscall` set.
// `done` (bytes completed before the failure) is attached when >= 0, so callers can
// resume a partially completed range operation.
[[noreturn]] void ThrowErrno(Napi::Env env, const char* syscall, int err,
                             const std::string& detail = "", int64_t done = -1);

// JS numbers carry addresses and sizes: user-space addresses are < 2^47, far inside
// the 2^53 a double holds exactly.
inline uint64_t U64(const Napi::Value& v) {
  return static_cast<uint64_t>(v.As<Napi::Number>().Int64Value());
}
inline int Fd(const Napi::Value& v) { return v.As<Napi::Number>().Int32Value(); }

void InitUffd(Napi::Env env, Napi::Object exports);
void InitMemory(Napi::Env env, Napi::Object exports);
void InitSocket(Napi::Env env, Napi::Object exports);
void InitPoll(Napi::Env env, Napi::Object exports);
void InitProcess(Napi::Env env, Napi::Object exports);

}  // namespace naplus
