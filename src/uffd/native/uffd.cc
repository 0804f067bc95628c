// userfaultfd: creation, UFFDIO_API, and the range ioctls. Each ioctl takes a whole
// range so that one call resolves many pages; retries (EAGAIN) and races (EEXIST) are
// policy and live in TypeScript.
#include "common.h"
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

// This distro's headers are 6.1; the running kernel may know more.
#ifndef UFFDIO_CONTINUE_MODE_WP
#define UFFDIO_CONTINUE_MODE_WP ((__u64)1 << 1)
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif

// UFFDIO_POISON (Linux 6.6): later accesses to the range raise SIGBUS.
#ifndef UFFDIO_POISON
struct uffdio_poison {
  struct uffdio_range range;
  __u64 mode;
  __s64 updated;
};
#define _UFFDIO_POISON (0x08)
#define UFFDIO_POISON _IOWR(UFFDIO, _UFFDIO_POISON, struct uffdio_poison)
#define UFFDIO_POISON_MODE_DONTWAKE ((__u64)1 << 0)
#endif
#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON (1 << 14)
#endif

namespace naplus {

// userfaultfd(2). flags: O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY.
static Napi::Value CreateSyscall(const Napi::CallbackInfo& info) {
  int flags = info[0].As<Napi::Number>().Int32Value();
  int fd = static_cast<int>(syscall(SYS_userfaultfd, flags));
  if (fd < 0) ThrowErrno(info.Env(), "userfaultfd", errno);
  return Napi::Number::New(info.Env(), fd);
}

// The /dev/userfaultfd route, for users granted access to the device node only.
static Napi::Value CreateDevice(const Napi::CallbackInfo& info) {
  int flags = info[0].As<Napi::Number>().Int32Value();
  int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
  if (dev < 0) ThrowErrno(info.Env(), "open", errno, "/dev/userfaultfd");
  int fd = ioctl(dev, USERFAULTFD_IOC_NEW, flags);
  int err = errno;
  close(dev);
  if (fd < 0) ThrowErrno(info.Env(), "ioctl(USERFAULTFD_IOC_NEW)", err);
  return Napi::Number::New(info.Env(), fd);
}

// UFFDIO_API: returns { features, ioctls } the kernel granted.
static Napi::Value Api(const Napi::CallbackInfo& info) {
  struct uffdio_api api = {};
  api.api = UFFD_API;
  api.features = U64(info[1]);
  if (ioctl(Fd(info[0]), UFFDIO_API, &api) < 0) ThrowErrno(info.Env(), "ioctl(UFFDIO_API)", errno);
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("features", Napi::Number::New(info.Env(), static_cast<double>(api.features)));
  out.Set("ioctls", Napi::Number::New(info.Env(), static_cast<double>(api.ioctls)));
  return out;
}

// UFFDIO_REGISTER: returns the bit set of ioctls allowed on the range.
static Napi::Value Register(const Napi::CallbackInfo& info) {
  struct uffdio_register reg = {};
  reg.range.start = U64(info[1]);
  reg.range.len = U64(info[2]);
  reg.mode = U64(info[3]);
  if (ioctl(Fd(info[0]), UFFDIO_REGISTER, &reg) < 0)
    ThrowErrno(info.Env(), "ioctl(UFFDIO_REGISTER)", errno);
  return Napi::Number::New(info.Env(), static_cast<double>(reg.ioctls));
}

static Napi::Value Unregister(const Napi::CallbackInfo& info) {
  struct uffdio_range range = {U64(info[1]), U64(info[2])};
  if (ioctl(Fd(info[0]), UFFDIO_UNREGISTER, &range) < 0)
    ThrowErrno(info.Env(), "ioctl(UFFDIO_UNREGISTER)", errno);
  return info.Env().Undefined();
}

// The filling ioctls (CONTINUE, ZEROPAGE, POISON: fd, start, len, mode) share one
// shape: a range, a mode, and a field where the kernel reports the bytes done, or a
// negated errno. A failure carries that progress as `done`, so the caller can resume
// after EAGAIN.
template <typename Arg, __s64 Arg::*Progress>
static Napi::Value FillRange(const Napi::CallbackInfo& info, unsigned long request, const char* name) {
  Arg arg = {};
  arg.range.start = U64(info[1]);
  arg.range.len = U64(info[2]);
  arg.mode = U64(info[3]);
  if (ioctl(Fd(info[0]), request, &arg) < 0)
    ThrowErrno(info.Env(), name, errno, "", arg.*Progress > 0 ? arg.*Progress : 0);
  return Napi::Number::New(info.Env(), static_cast<double>(arg.*Progress));
}

static Napi::Value Continue(const Napi::CallbackInfo& info) {
  return FillRange<uffdio_continue, &uffdio_continue::mapped>(info, UFFDIO_CONTINUE, "ioctl(UFFDIO_CONTINUE)");
}

static Napi::Value Zeropage(const Napi::CallbackInfo& info) {
  return FillRange<uffdio_zeropage, &uffdio_zeropage::zeropage>(info, UFFDIO_ZEROPAGE, "ioctl(UFFDIO_ZEROPAGE)");
}

static Napi::Value Poison(const Napi::CallbackInfo& info) {
  return FillRange<uffdio_poison, &uffdio_poison::updated>(info, UFFDIO_POISON, "ioctl(UFFDIO_POISON)");
}

// COPY has a source besides the range: (fd, dst, src, len, mode).
static Napi::Value Copy(const Napi::CallbackInfo& info) {
  struct uffdio_copy c = {};
  c.dst = U64(info[1]);
  c.src = U64(info[2]);
  c.len = U64(info[3]);
  c.mode = U64(info[4]);
  if (ioctl(Fd(info[0]), UFFDIO_COPY, &c) < 0)
    ThrowErrno(info.Env(), "ioctl(UFFDIO_COPY)", errno, "", c.copy > 0 ? c.copy : 0);
  return Napi::Number::New(info.Env(), static_cast<double>(c.copy));
}

static Napi::Value Writeprotect(const Napi::CallbackInfo& info) {
  struct uffdio_writeprotect wp = {};
  wp.range.start = U64(info[1]);
  wp.range.len = U64(info[2]);
  wp.mode = U64(info[3]);
  if (ioctl(Fd(info[0]), UFFDIO_WRITEPROTECT, &wp) < 0)
    ThrowErrno(info.Env(), "ioctl(UFFDIO_WRITEPROTECT)", errno);
  return info.Env().Undefined();
}

static Napi::Value Wake(const Napi::CallbackInfo& info) {
  struct uffdio_range range = {U64(info[1]), U64(info[2])};
  if (ioctl(Fd(info[0]), UFFDIO_WAKE, &range) < 0) ThrowErrno(info.Env(), "ioctl(UFFDIO_WAKE)", errno);
  return info.Env().Undefined();
}

void InitUffd(Napi::Env env, Napi::Object exports) {
  exports.Set("uffdCreate", Napi::Function::New(env, CreateSyscall));
  exports.Set("uffdCreateDevice", Napi::Function::New(env, CreateDevice));
  exports.Set("uffdApi", Napi::Function::New(env, Api));
  exports.Set("uffdRegister", Napi::Function::New(env, Register));
  exports.Set("uffdUnregister", Napi::Function::New(env, Unregister));
  exports.Set("uffdContinue", Napi::Function::New(env, Continue));
  exports.Set("uffdCopy", Napi::Function::New(env, Copy));
  exports.Set("uffdZeropage", Napi::Function::New(env, Zeropage));
  exports.Set("uffdPoison", Napi::Function::New(env, Poison));
  exports.Set("uffdWriteprotect", Napi::Function::New(env, Writeprotect));
  exports.Set("uffdWake", Napi::Function::New(env, Wake));

  Napi::Object k = Napi::Object::New(env);
  auto def = [&](const char* name, uint64_t v) { k.Set(name, Napi::Number::New(env, static_cast<double>(v))); };
  def("O_CLOEXEC", O_CLOEXEC);
  def("O_NONBLOCK", O_NONBLOCK);
  def("UFFD_USER_MODE_ONLY", UFFD_USER_MODE_ONLY);
  def("UFFD_FEATURE_PAGEFAULT_FLAG_WP", UFFD_FEATURE_PAGEFAULT_FLAG_WP);
  def("UFFD_FEATURE_EVENT_FORK", UFFD_FEATURE_EVENT_FORK);
  def("UFFD_FEATURE_EVENT_REMAP", UFFD_FEATURE_EVENT_REMAP);
  def("UFFD_FEATURE_EVENT_REMOVE", UFFD_FEATURE_EVENT_REMOVE);
  def("UFFD_FEATURE_EVENT_UNMAP", UFFD_FEATURE_EVENT_UNMAP);
  def("UFFD_FEATURE_MISSING_SHMEM", UFFD_FEATURE_MISSING_SHMEM);
  def("UFFD_FEATURE_THREAD_ID", UFFD_FEATURE_THREAD_ID);
  def("UFFD_FEATURE_MINOR_SHMEM", UFFD_FEATURE_MINOR_SHMEM);
  def("UFFD_FEATURE_WP_HUGETLBFS_SHMEM", UFFD_FEATURE_WP_HUGETLBFS_SHMEM);
  def("UFFD_FEATURE_WP_UNPOPULATED", UFFD_FEATURE_WP_UNPOPULATED);
  def("UFFD_FEATURE_POISON", UFFD_FEATURE_POISON);
  def("UFFDIO_POISON_MODE_DONTWAKE", UFFDIO_POISON_MODE_DONTWAKE);
  def("UFFDIO_REGISTER_MODE_MISSING", UFFDIO_REGISTER_MODE_MISSING);
  def("UFFDIO_REGISTER_MODE_WP", UFFDIO_REGISTER_MODE_WP);
  def("UFFDIO_REGISTER_MODE_MINOR", UFFDIO_REGISTER_MODE_MINOR);
  def("UFFDIO_COPY_MODE_DONTWAKE", UFFDIO_COPY_MODE_DONTWAKE);
  def("UFFDIO_COPY_MODE_WP", UFFDIO_COPY_MODE_WP);
  def("UFFDIO_ZEROPAGE_MODE_DONTWAKE", UFFDIO_ZEROPAGE_MODE_DONTWAKE);
  def("UFFDIO_CONTINUE_MODE_DONTWAKE", UFFDIO_CONTINUE_MODE_DONTWAKE);
  def("UFFDIO_CONTINUE_MODE_WP", UFFDIO_CONTINUE_MODE_WP);
  def("UFFDIO_WRITEPROTECT_MODE_WP", UFFDIO_WRITEPROTECT_MODE_WP);
  def("UFFDIO_WRITEPROTECT_MODE_DONTWAKE", UFFDIO_WRITEPROTECT_MODE_DONTWAKE);
  def("UFFD_EVENT_PAGEFAULT", UFFD_EVENT_PAGEFAULT);
  def("UFFD_EVENT_FORK", UFFD_EVENT_FORK);
  def("UFFD_EVENT_REMAP", UFFD_EVENT_REMAP);
  def("UFFD_EVENT_REMOVE", UFFD_EVENT_REMOVE);
  def("UFFD_EVENT_UNMAP", UFFD_EVENT_UNMAP);
  def("UFFD_PAGEFAULT_FLAG_WRITE", UFFD_PAGEFAULT_FLAG_WRITE);
  def("UFFD_PAGEFAULT_FLAG_WP", UFFD_PAGEFAULT_FLAG_WP);
  def("UFFD_PAGEFAULT_FLAG_MINOR", UFFD_PAGEFAULT_FLAG_MINOR);
  def("UFFD_MSG_SIZE", sizeof(struct uffd_msg));
  def("_UFFDIO_CONTINUE", _UFFDIO_CONTINUE);
  def("_UFFDIO_WRITEPROTECT", _UFFDIO_WRITEPROTECT);
  exports.Set("constants", k);
}

}  // namespace naplus
