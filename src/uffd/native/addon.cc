#include "common.h"
#include <cstring>

namespace naplus {

static const char* ErrnoName(int err) {
  switch (err) {
#define E(x) case x: return #x;
    E(EPERM) E(ENOENT) E(EINTR) E(EIO) E(EBADF) E(EAGAIN) E(ENOMEM) E(EACCES)
    E(EFAULT) E(EBUSY) E(EEXIST) E(ENODEV) E(ENOTDIR) E(EINVAL) E(EMFILE)
    E(ENOSPC) E(ESPIPE) E(ENOSYS) E(ENOTSOCK) E(EMSGSIZE) E(EOPNOTSUPP)
    E(EADDRINUSE) E(ECONNREFUSED) E(ECONNRESET) E(EPIPE) E(ESRCH) E(ENOTCONN)
    E(ERANGE) E(EOVERFLOW) E(ENXIO) E(ENOTTY) E(ENAMETOOLONG)
    E(ENFILE) E(ENOBUFS) E(ECONNABORTED) E(ENOPROTOOPT)
#undef E
    default: return "EUNKNOWN";
  }
}

void ThrowErrno(Napi::Env env, const char* syscall, int err, const std::string& detail,
                int64_t done) {
  std::string msg = std::string(syscall) + " failed: " + strerror(err);
  if (!detail.empty()) msg += " (" + detail + ")";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  if (done >= 0) e.Set("done", Napi::Number::New(env, static_cast<double>(done)));
  throw e;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InitUffd(env, exports);
  InitMemory(env, exports);
  InitSocket(env, exports);
  InitPoll(env, exports);
  InitProcess(env, exports);
  return exports;
}

}  // namespace naplus

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return naplus::Init(env, exports); }
NODE_API_MODULE(naplus_uffd, InitAddon)
