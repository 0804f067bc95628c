// Shared memory mechanics: memfd, fallocate, mmap with a registry of live mappings,
// zero-copy ArrayBuffer views, and bounds-checked copies between mapped areas.
//
// Why a registry: JS holds addresses as numbers, and an ArrayBuffer over a mapping must
// never outlive it. Every view takes a reference on its mapping; `munmap` only drops
// the owner's reference, so the pages go away when the last view is collected. Copies
// are checked against the registry so that a wrong address is an error, not a crash.
#include "common.h"
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>

namespace naplus {

namespace {

struct Mapping {
  uintptr_t start;
  size_t len;
  int refs;       // owner (until munmap) + one per live ArrayBuffer view
  bool released;  // owner gave it up: no new views or copies
};

std::mutex g_lock;  // views may be made and collected on worker threads
std::map<uintptr_t, Mapping*> g_maps;

// The live mapping holding [addr, addr+len), or nullptr.
Mapping* FindLocked(uintptr_t addr, size_t len) {
  auto it = g_maps.upper_bound(addr);
  if (it == g_maps.begin()) return nullptr;
  Mapping* m = (--it)->second;
  if (m->released || addr < m->start || len > m->len || addr - m->start > m->len - len) return nullptr;
  return m;
}

std::string Hex(uint64_t v) {
  char buf[19];
  snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

void UnrefLocked(Mapping* m) {
  if (--m->refs > 0) return;
  munmap(reinterpret_cast<void*>(m->start), m->len);
  g_maps.erase(m->start);
  delete m;
}

void* Checked(Napi::Env env, const char* op, uint64_t addr, uint64_t len) {
  std::lock_guard<std::mutex> hold(g_lock);
  if (!FindLocked(addr, len))
    ThrowErrno(env, op, EFAULT, "range " + Hex(addr) + "+" + std::to_string(len) +
                                    " is not inside a live mapping");
  return reinterpret_cast<void*>(addr);
}

}  // namespace

// fence(addr, len): replaces [addr, addr+len) of a live mapping, in place, by a mapping
// of an empty file, so that every access there takes SIGBUS. Views over it keep their
// addresses; they just cannot be read or written any more. For an app whose node is gone.
static Napi::Value Fence(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t addr = U64(info[0]), len = U64(info[1]);
  std::lock_guard<std::mutex> hold(g_lock);
  if (!FindLocked(addr, len))
    ThrowErrno(env, "fence", EFAULT, "range " + Hex(addr) + "+" + std::to_string(len) + " is not inside a live mapping");
  int fd = memfd_create("naplus:fenced", MFD_CLOEXEC);
  if (fd < 0) ThrowErrno(env, "memfd_create", errno);
  void* p = mmap(reinterpret_cast<void*>(addr), len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
  int err = errno;
  close(fd);
  if (p == MAP_FAILED) ThrowErrno(env, "mmap", err);
  return env.Undefined();
}

static Napi::Value MemfdCreate(const Napi::CallbackInfo& info) {
  std::string name = info[0].As<Napi::String>();
  int fd = memfd_create(name.c_str(), info[1].As<Napi::Number>().Uint32Value());
  if (fd < 0) ThrowErrno(info.Env(), "memfd_create", errno, name);
  return Napi::Number::New(info.Env(), fd);
}

// memfdSeals(fd, add) -> the seals now on the file, after adding `add` (0: none).
static Napi::Value MemfdSeals(const Napi::CallbackInfo& info) {
  int fd = Fd(info[0]);
  int add = info[1].As<Napi::Number>().Int32Value();
  if (add != 0 && fcntl(fd, F_ADD_SEALS, add) < 0) ThrowErrno(info.Env(), "fcntl(F_ADD_SEALS)", errno);
  int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0) ThrowErrno(info.Env(), "fcntl(F_GET_SEALS)", errno);
  return Napi::Number::New(info.Env(), seals);
}

static Napi::Value Fallocate(const Napi::CallbackInfo& info) {
  if (fallocate(Fd(info[0]), info[1].As<Napi::Number>().Int32Value(), U64(info[2]), U64(info[3])) < 0)
    ThrowErrno(info.Env(), "fallocate", errno);
  return info.Env().Undefined();
}

// mmap(fd, length, offset, prot, flags) -> address
static Napi::Value Mmap(const Napi::CallbackInfo& info) {
  size_t len = U64(info[1]);
  void* p = mmap(nullptr, len, info[3].As<Napi::Number>().Int32Value(),
                 info[4].As<Napi::Number>().Int32Value(), Fd(info[0]), U64(info[2]));
  if (p == MAP_FAILED) ThrowErrno(info.Env(), "mmap", errno);
  std::lock_guard<std::mutex> hold(g_lock);
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  g_maps[a] = new Mapping{a, len, 1, false};
  return Napi::Number::New(info.Env(), static_cast<double>(a));
}

// Drops the owner's reference; the pages stay until the last view is collected.
static Napi::Value Munmap(const Napi::CallbackInfo& info) {
  std::lock_guard<std::mutex> hold(g_lock);
  auto it = g_maps.find(U64(info[0]));
  if (it == g_maps.end() || it->second->released)
    ThrowErrno(info.Env(), "munmap", EINVAL, "not the start of a live mapping");
  it->second->released = true;
  UnrefLocked(it->second);
  return info.Env().Undefined();
}

static Napi::Value Madvise(const Napi::CallbackInfo& info) {
  void* p = Checked(info.Env(), "madvise", U64(info[0]), U64(info[1]));
  if (madvise(p, U64(info[1]), info[2].As<Napi::Number>().Int32Value()) < 0)
    ThrowErrno(info.Env(), "madvise", errno);
  return info.Env().Undefined();
}

// An ArrayBuffer over [addr, addr+len) of a live mapping, without copying. It keeps the
// mapping alive until it is garbage collected, on whichever thread made it.
static Napi::Value View(const Napi::CallbackInfo& info) {
  uint64_t addr = U64(info[0]), len = U64(info[1]);
  Mapping* m;
  {
    std::lock_guard<std::mutex> hold(g_lock);
    m = FindLocked(addr, len);
    if (!m) ThrowErrno(info.Env(), "view", EFAULT, "range is not inside a live mapping");
    m->refs++;
  }
  return Napi::ArrayBuffer::New(info.Env(), reinterpret_cast<void*>(addr), len,
                                [](Napi::Env, void*, Mapping* mm) {
                                  std::lock_guard<std::mutex> hold(g_lock);
                                  UnrefLocked(mm);
                                },
                                m);
}

// copy(dst, src, len) between two live mappings (they may be the same one).
static Napi::Value Copy(const Napi::CallbackInfo& info) {
  uint64_t len = U64(info[2]);
  void* dst = Checked(info.Env(), "copy", U64(info[0]), len);
  void* src = Checked(info.Env(), "copy", U64(info[1]), len);
  memmove(dst, src, len);
  return info.Env().Undefined();
}

// readInto(src, typedArray): fills the whole typed array from mapped memory.
static Napi::Value ReadInto(const Napi::CallbackInfo& info) {
  Napi::TypedArray ta = info[1].As<Napi::TypedArray>();
  uint8_t* bytes = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  memcpy(bytes, Checked(info.Env(), "readInto", U64(info[0]), ta.ByteLength()), ta.ByteLength());
  return info.Env().Undefined();
}

// writeFrom(dst, typedArray): stores the whole typed array into mapped memory.
static Napi::Value WriteFrom(const Napi::CallbackInfo& info) {
  Napi::TypedArray ta = info[1].As<Napi::TypedArray>();
  const uint8_t* bytes = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  memcpy(Checked(info.Env(), "writeFrom", U64(info[0]), ta.ByteLength()), bytes, ta.ByteLength());
  return info.Env().Undefined();
}

// isZero(addr, len): true when every byte is zero. Zero pages travel as a marker.
static Napi::Value IsZero(const Napi::CallbackInfo& info) {
  uint64_t len = U64(info[1]);
  const uint8_t* p = static_cast<const uint8_t*>(Checked(info.Env(), "isZero", U64(info[0]), len));
  uint64_t acc = 0;
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    acc |= w;
    if ((i & 511) == 0 && acc) break;  // early exit every 512 bytes
  }
  for (; acc == 0 && i < len; i++) acc |= p[i];
  return Napi::Boolean::New(info.Env(), acc == 0);
}

void InitMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("fence", Napi::Function::New(env, Fence));
  exports.Set("memfdCreate", Napi::Function::New(env, MemfdCreate));
  exports.Set("memfdSeals", Napi::Function::New(env, MemfdSeals));
  exports.Set("fallocate", Napi::Function::New(env, Fallocate));
  exports.Set("mmap", Napi::Function::New(env, Mmap));
  exports.Set("munmap", Napi::Function::New(env, Munmap));
  exports.Set("madvise", Napi::Function::New(env, Madvise));
  exports.Set("view", Napi::Function::New(env, View));
  exports.Set("copy", Napi::Function::New(env, Copy));
  exports.Set("readInto", Napi::Function::New(env, ReadInto));
  exports.Set("writeFrom", Napi::Function::New(env, WriteFrom));
  exports.Set("isZero", Napi::Function::New(env, IsZero));

  Napi::Object k = exports.Get("constants").As<Napi::Object>();
  auto def = [&](const char* name, int64_t v) { k.Set(name, Napi::Number::New(env, static_cast<double>(v))); };
  def("MFD_CLOEXEC", MFD_CLOEXEC);
  def("MFD_ALLOW_SEALING", MFD_ALLOW_SEALING);
  def("F_SEAL_SEAL", F_SEAL_SEAL);
  def("F_SEAL_SHRINK", F_SEAL_SHRINK);
  def("F_SEAL_GROW", F_SEAL_GROW);
  def("F_SEAL_WRITE", F_SEAL_WRITE);
  def("F_SEAL_FUTURE_WRITE", F_SEAL_FUTURE_WRITE);
  def("FALLOC_FL_KEEP_SIZE", FALLOC_FL_KEEP_SIZE);
  def("FALLOC_FL_PUNCH_HOLE", FALLOC_FL_PUNCH_HOLE);
  def("PROT_NONE", PROT_NONE);
  def("PROT_READ", PROT_READ);
  def("PROT_WRITE", PROT_WRITE);
  def("MAP_SHARED", MAP_SHARED);
  def("MAP_POPULATE", MAP_POPULATE);
  def("MADV_DONTNEED", MADV_DONTNEED);
  def("MADV_REMOVE", MADV_REMOVE);
  def("MADV_WILLNEED", MADV_WILLNEED);
  def("MADV_POPULATE_READ", 22);   // Linux 5.14; not in every libc header
  def("MADV_POPULATE_WRITE", 23);
}

}  // namespace naplus
