// Processes by pidfd: a descriptor that names one process for as long as it is held, so
// a signal can never reach another process that was given the same pid after it exited.
#include "common.h"
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

// SO_PEERPIDFD (Linux 6.5): a pidfd of the process that connected a unix socket, taken
// by the kernel at connect time. This distro's headers are 6.1.
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

namespace naplus {

// peerPidfd(socketFd) -> pidfd of the peer. ENOPROTOOPT before Linux 6.5.
static Napi::Value PeerPidfd(const Napi::CallbackInfo& info) {
  int pidfd = -1;
  socklen_t len = sizeof pidfd;
  if (getsockopt(Fd(info[0]), SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) < 0)
    ThrowErrno(info.Env(), "getsockopt(SO_PEERPIDFD)", errno);
  return Napi::Number::New(info.Env(), pidfd);
}

// pidfdOpen(pid) -> pidfd (close-on-exec).
static Napi::Value PidfdOpen(const Napi::CallbackInfo& info) {
  int fd = static_cast<int>(syscall(SYS_pidfd_open, info[0].As<Napi::Number>().Int32Value(), 0));
  if (fd < 0) ThrowErrno(info.Env(), "pidfd_open", errno);
  return Napi::Number::New(info.Env(), fd);
}

// pidfdSendSignal(pidfd, signal); signal 0 only checks that the process is alive.
static Napi::Value PidfdSendSignal(const Napi::CallbackInfo& info) {
  if (syscall(SYS_pidfd_send_signal, Fd(info[0]), info[1].As<Napi::Number>().Int32Value(), nullptr, 0) < 0)
    ThrowErrno(info.Env(), "pidfd_send_signal", errno);
  return info.Env().Undefined();
}

void InitProcess(Napi::Env env, Napi::Object exports) {
  exports.Set("peerPidfd", Napi::Function::New(env, PeerPidfd));
  exports.Set("pidfdOpen", Napi::Function::New(env, PidfdOpen));
  exports.Set("pidfdSendSignal", Napi::Function::New(env, PidfdSendSignal));
}

}  // namespace naplus
