// Unix SOCK_SEQPACKET sockets with SCM_RIGHTS. Node's net module cannot carry file
// descriptors on a plain unix socket (libuv reads without ancillary data and the kernel
// then drops the descriptors), so the attach channel is built from these few calls and
// watched with uv_poll. SEQPACKET keeps message boundaries, so one message = one frame.
#include "common.h"
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cstddef>
#include <cstring>
#include <vector>

namespace naplus {

static constexpr int kMaxFds = 16;

static sockaddr_un Address(Napi::Env env, const std::string& path) {
  sockaddr_un sa = {};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof(sa.sun_path))
    ThrowErrno(env, "socket", EINVAL,
               "socket path longer than " + std::to_string(sizeof(sa.sun_path) - 1) + " bytes: " + path);
  memcpy(sa.sun_path, path.c_str(), path.size());
  return sa;
}

static int NewSocket(Napi::Env env) {
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) ThrowErrno(env, "socket", errno);
  return fd;
}

static Napi::Value Listen(const Napi::CallbackInfo& info) {
  std::string path = info[0].As<Napi::String>();
  sockaddr_un sa = Address(info.Env(), path);
  int fd = NewSocket(info.Env());
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0 ||
      listen(fd, info[1].As<Napi::Number>().Int32Value()) < 0) {
    int err = errno;
    close(fd);
    ThrowErrno(info.Env(), "bind", err, path);
  }
  return Napi::Number::New(info.Env(), fd);
}

// Connecting a local unix socket completes at once (or fails at once), even nonblocking.
static Napi::Value Connect(const Napi::CallbackInfo& info) {
  std::string path = info[0].As<Napi::String>();
  sockaddr_un sa = Address(info.Env(), path);
  int fd = NewSocket(info.Env());
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
    int err = errno;
    close(fd);
    ThrowErrno(info.Env(), "connect", err, path);
  }
  return Napi::Number::New(info.Env(), fd);
}

// accept -> fd, or -1 when no connection is pending (or the one pending was given up by
// its peer before we took it).
static Napi::Value Accept(const Napi::CallbackInfo& info) {
  int fd = accept4(Fd(info[0]), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0 && errno != EAGAIN && errno != ECONNABORTED) ThrowErrno(info.Env(), "accept", errno);
  return Napi::Number::New(info.Env(), fd);
}

// sendMsg(fd, bytes, fds[]) -> bytes sent. The descriptors are duplicated into the peer;
// the caller still owns (and should close) its own.
static Napi::Value SendMsg(const Napi::CallbackInfo& info) {
  Napi::TypedArray ta = info[1].As<Napi::TypedArray>();
  Napi::Array fds = info[2].As<Napi::Array>();
  if (fds.Length() > kMaxFds) ThrowErrno(info.Env(), "sendmsg", EINVAL, "too many descriptors");
  iovec iov = {static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset(), ta.ByteLength()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)] = {};
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (fds.Length() > 0) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.Length());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.Length());
    int* out = reinterpret_cast<int*>(CMSG_DATA(c));
    for (uint32_t i = 0; i < fds.Length(); i++) out[i] = Fd(fds.Get(i));
  }
  ssize_t n = sendmsg(Fd(info[0]), &msg, MSG_NOSIGNAL);
  if (n < 0) ThrowErrno(info.Env(), "sendmsg", errno);
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

// recvMsg(fd, maxBytes) -> { data, fds } | null when nothing is waiting.
// End of stream is { data: <empty>, fds: [], eof: true }.
static Napi::Value RecvMsg(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<uint8_t> buf(info[1].As<Napi::Number>().Uint32Value());
  iovec iov = {buf.data(), buf.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n = recvmsg(Fd(info[0]), &msg, MSG_CMSG_CLOEXEC);
  if (n < 0) {
    if (errno == EAGAIN) return env.Null();
    ThrowErrno(env, "recvmsg", errno);
  }
  Napi::Array fds = Napi::Array::New(env);
  std::vector<int> got;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const int* in = reinterpret_cast<const int*>(CMSG_DATA(c));
    for (size_t i = 0; i < count; i++) got.push_back(in[i]);
  }
  if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
    for (int fd : got) close(fd);  // never leak what we refuse
    ThrowErrno(env, "recvmsg", EMSGSIZE, "message or descriptors truncated");
  }
  for (size_t i = 0; i < got.size(); i++) fds.Set(static_cast<uint32_t>(i), Napi::Number::New(env, got[i]));
  Napi::Object out = Napi::Object::New(env);
  out.Set("data", Napi::Buffer<uint8_t>::Copy(env, buf.data(), static_cast<size_t>(n)));
  out.Set("fds", fds);
  if (n == 0 && got.empty()) out.Set("eof", Napi::Boolean::New(env, true));
  return out;
}

static Napi::Value PeerCred(const Napi::CallbackInfo& info) {
  ucred cred = {};
  socklen_t len = sizeof cred;
  if (getsockopt(Fd(info[0]), SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
    ThrowErrno(info.Env(), "getsockopt(SO_PEERCRED)", errno);
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("pid", Napi::Number::New(info.Env(), cred.pid));
  out.Set("uid", Napi::Number::New(info.Env(), cred.uid));
  out.Set("gid", Napi::Number::New(info.Env(), cred.gid));
  return out;
}

// dup(fd) with close-on-exec: keeps a descriptor valid while a send is queued.
static Napi::Value Dup(const Napi::CallbackInfo& info) {
  int fd = fcntl(Fd(info[0]), F_DUPFD_CLOEXEC, 3);
  if (fd < 0) ThrowErrno(info.Env(), "dup", errno);
  return Napi::Number::New(info.Env(), fd);
}

// sendDatagram(address, bytes): one datagram to a unix SOCK_DGRAM socket, as sd_notify(3)
// sends to $NOTIFY_SOCKET. `address` is sun_path's bytes exactly (an abstract name
// starts with a NUL byte), which Node's dgram module cannot reach at all.
static Napi::Value SendDatagram(const Napi::CallbackInfo& info) {
  Napi::TypedArray addr = info[0].As<Napi::TypedArray>();
  Napi::TypedArray ta = info[1].As<Napi::TypedArray>();
  sockaddr_un sa = {};
  sa.sun_family = AF_UNIX;
  if (addr.ByteLength() == 0 || addr.ByteLength() > sizeof(sa.sun_path))
    ThrowErrno(info.Env(), "sendto", EINVAL, "unix socket address of " + std::to_string(addr.ByteLength()) + " bytes");
  memcpy(sa.sun_path, static_cast<uint8_t*>(addr.ArrayBuffer().Data()) + addr.ByteOffset(), addr.ByteLength());
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowErrno(info.Env(), "socket", errno);
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + addr.ByteLength());
  ssize_t n = sendto(fd, static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset(), ta.ByteLength(), MSG_NOSIGNAL,
                     reinterpret_cast<sockaddr*>(&sa), len);
  int err = errno;
  close(fd);
  if (n < 0) ThrowErrno(info.Env(), "sendto", err);
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

void InitSocket(Napi::Env env, Napi::Object exports) {
  exports.Set("sendDatagram", Napi::Function::New(env, SendDatagram));
  exports.Set("dup", Napi::Function::New(env, Dup));
  exports.Set("unixListen", Napi::Function::New(env, Listen));
  exports.Set("unixConnect", Napi::Function::New(env, Connect));
  exports.Set("unixAccept", Napi::Function::New(env, Accept));
  exports.Set("sendMsg", Napi::Function::New(env, SendMsg));
  exports.Set("recvMsg", Napi::Function::New(env, RecvMsg));
  exports.Set("peerCred", Napi::Function::New(env, PeerCred));
}

}  // namespace naplus
