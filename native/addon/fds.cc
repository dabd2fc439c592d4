// Moving fds and bytes: the sync socket with the executor, fds passed over unix sockets (console socket,
// seccomp listener), the exec fifo, locks, and polling.
#include "addon.h"

#include <cstring>
#include <string>

extern "C" {
#include "../executor/fdmsg.h"
#include "../executor/joined.h"
#include "../executor/sync.h"
}

#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>

namespace tsrt {

// One recvmsg into buf (close-on-exec for a passed fd): the byte count (or -errno), and *fd the fd that came
// with it over SCM_RIGHTS, or -1.
static ssize_t RecvWithFd(int sock, void *buf, size_t len, int *fd, bool *truncated) {
  struct fdmsg m;
  struct msghdr *mh = fdmsg_init(&m, buf, len, FDMSG_RECV);
  ssize_t n;
  do n = recvmsg(sock, mh, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  *truncated = (mh->msg_flags & MSG_CTRUNC) != 0;
  *fd = n < 0 ? -1 : fdmsg_fd(&m);
  if (n < 0) return -errno;
  return n;
}

// recv(sock) -> { type, step, err, pid, detail, fd } | null on EOF. fd is -1 unless the message carried one
// over SCM_RIGHTS (MSG_SECCOMP: the seccomp listener).
Napi::Value Recv(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  struct tsrt_msg m;
  int fd;
  bool truncated;
  ssize_t n = RecvWithFd(IntArg(info, 0), &m, sizeof(m), &fd, &truncated);
  Fd passed(fd);
  if (n < 0) {
    if (n == -ECONNRESET) return env.Null();
    return ThrowErrno(env, "sync socket", static_cast<int>(-n));
  }
  if (n == 0) return env.Null();
  if (n != static_cast<ssize_t>(sizeof(m)) || truncated)
    return ThrowErrno(env, "sync socket: malformed message", EPROTO);
  m.detail[sizeof(m.detail) - 1] = 0;
  Napi::Object out = Napi::Object::New(env);
  out.Set("type", m.type);
  out.Set("step", m.step);
  out.Set("err", m.err);
  out.Set("errname", m.err > 0 ? ErrnoName(m.err) : "");
  out.Set("pid", m.pid);
  out.Set("detail", m.detail);
  out.Set("fd", passed.release());
  return out;
}

// send(sock, type, fd?): fd, when given, rides along (SCM_RIGHTS): a bind source for MSG_MOUNT_SOURCE.
Napi::Value Send(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  struct tsrt_msg m;
  memset(&m, 0, sizeof(m));
  m.type = static_cast<uint32_t>(IntArg(info, 1));
  int fd = info.Length() > 2 ? IntArg(info, 2) : -1;
  struct fdmsg fm;
  if (sendmsg(IntArg(info, 0), fdmsg_init(&fm, &m, sizeof(m), fd < 0 ? FDMSG_NONE : fd), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(sizeof(m)))
    return ThrowErrno(env, "sync socket", errno);
  return env.Undefined();
}

// openInMountns(pid, path) -> fd: open(path, O_PATH) in the mount namespace of process `pid`, with the
// runtime's credentials (a bind source below a directory the container's root may not search).
Napi::Value OpenInMountns(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = info[1].As<Napi::String>();
  Fd target(static_cast<int>(syscall(SYS_pidfd_open, IntArg(info, 0), 0)));
  if (!target.ok()) return ThrowErrno(env, "pidfd_open of the container process", errno);
  int err = 0;
  int fd = joined_open(target.get(), path.c_str(), &err);
  if (fd < 0) return ThrowErrno(env, "open " + path, err);
  return Napi::Number::New(env, fd);
}

// Whether fd polls readable (or hung up, or in error) within timeout ms (-1: for ever).
bool PollIn(int fd, int timeout) {
  struct pollfd p = {fd, POLLIN, 0};
  int n;
  do n = poll(&p, 1, timeout);
  while (n < 0 && errno == EINTR);
  return n > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR));
}

// waitReadable(fd, timeoutMs) -> whether a read would not block (data, EOF or an error) within the time:
// the synchronous D-Bus client must not hang forever on a bus that never answers.
Napi::Value WaitReadable(const Napi::CallbackInfo &info) {
  return Napi::Boolean::New(info.Env(), PollIn(IntArg(info, 0), IntArg(info, 1)));
}

// makeFifo(path, mode) -> O_PATH fd of the new fifo (exec.fifo)
Napi::Value MakeFifo(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>();
  mode_t old = umask(0);
  int r = mkfifo(path.c_str(), static_cast<mode_t>(IntArg(info, 1)));
  int err = errno;
  umask(old);
  if (r < 0) return ThrowErrno(env, "mkfifo " + path, err);
  int fd = open(path.c_str(), O_PATH | O_CLOEXEC);
  if (fd < 0) return ThrowErrno(env, "open " + path, errno);
  return Napi::Number::New(env, fd);
}

// startFifo(path, pidfd) -> "ok" | "stopped" | "missing": the `start` side of the exec fifo. Opens the read
// end without blocking and waits for either the init's byte or the init's death, so `start` on a dead
// container cannot hang.
Napi::Value StartFifo(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>();
  int pidfd = IntArg(info, 1);
  Fd fd(open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!fd.ok()) {
    if (errno == ENOENT) return Napi::String::New(env, "missing");
    return ThrowErrno(env, "open " + path, errno);
  }
  const char *result = "stopped";
  for (;;) {
    struct pollfd p[2] = {{fd.get(), POLLIN, 0}, {pidfd, POLLIN, 0}};
    int n = poll(p, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ThrowErrno(env, "poll exec fifo", errno);
    if (p[0].revents & POLLIN) {
      char c;
      ssize_t r = read(fd.get(), &c, 1);
      if (r == 1) result = "ok";
      break;
    }
    if (p[1].revents) break;
    if (p[0].revents & POLLHUP) break;
  }
  return Napi::String::New(env, result);
}

// A connected SOCK_STREAM unix socket to path, or -1 with *err set.
static int ConnectTo(const std::string &path, int *err) {
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    *err = ENAMETOOLONG;
    return -1;
  }
  memcpy(addr.sun_path, path.c_str(), path.size());
  Fd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.ok()) {
    *err = errno;
    return -1;
  }
  if (connect(fd.get(), reinterpret_cast<struct sockaddr *>(&addr), sizeof(addr)) < 0) {
    *err = errno;
    return -1;
  }
  return fd.release();
}

// connectUnix(path) -> fd of a connected SOCK_STREAM socket (the --console-socket)
Napi::Value ConnectUnix(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>();
  int err = 0;
  int fd = ConnectTo(path, &err);
  if (fd < 0) return ThrowErrno(env, "connect " + path, err);
  return Napi::Number::New(env, fd);
}

// socketPair() -> [a, b]: an in-process console socket for foreground terminal runs.
Napi::Value SocketPair(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return ThrowErrno(env, "socketpair", errno);
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, sv[0]);
  out.Set(1u, sv[1]);
  return out;
}

// recvFd(sock) -> fd received over SCM_RIGHTS
Napi::Value RecvFd(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  char data[4096];
  int fd;
  bool truncated;
  ssize_t n = RecvWithFd(IntArg(info, 0), data, sizeof(data), &fd, &truncated);
  if (n < 0) return ThrowErrno(env, "recvmsg", static_cast<int>(-n));
  if (fd < 0) return ThrowErrno(env, "recvmsg: no fd", EPROTO);
  return Napi::Number::New(env, fd);
}

// sendFdTo(path, data, fd): connects to the unix socket at path, sends data with fd attached (SCM_RIGHTS), and
// closes the connection: the seccomp listener hand-off of runtime-spec config-linux.md.
Napi::Value SendFdTo(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>();
  std::string data = info[1].As<Napi::String>();
  int passed = IntArg(info, 2);
  int err = 0;
  Fd fd(ConnectTo(path, &err));
  if (!fd.ok()) return ThrowErrno(env, "connect " + path, err, "connect");
  size_t off = 0;
  bool first = true;
  while (off < data.size()) {
    struct fdmsg fm;
    // The fd rides on the first bytes only.
    struct msghdr *mh =
        fdmsg_init(&fm, const_cast<char *>(data.data()) + off, data.size() - off, first ? passed : FDMSG_NONE);
    ssize_t n = sendmsg(fd.get(), mh, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ThrowErrno(env, "send to " + path, n < 0 ? errno : EPIPE);
    first = false;
    off += static_cast<size_t>(n);
  }
  return env.Undefined();
}

// flock(fd, exclusive, wait) -> true | false (would block)
Napi::Value Flock(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int op = info[1].As<Napi::Boolean>() ? LOCK_EX : LOCK_SH;
  if (!info[2].As<Napi::Boolean>()) op |= LOCK_NB;
  int r;
  do r = flock(IntArg(info, 0), op);
  while (r < 0 && errno == EINTR);
  if (r < 0 && errno == EWOULDBLOCK) return Napi::Boolean::New(env, false);
  if (r < 0) return ThrowErrno(env, "flock", errno);
  return Napi::Boolean::New(env, true);
}

// openDir(path) -> O_DIRECTORY fd (for locking a state dir)
Napi::Value OpenDir(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>();
  int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ThrowErrno(env, "open " + path, errno);
  return Napi::Number::New(env, fd);
}

// allocate(fd, length): the file's blocks are allocated now (fallocate). Returns false where the filesystem
// cannot (EOPNOTSUPP): the caller writes anyway. Why: ext4 flushes a file's delayed allocation when it replaces
// another one by rename (auto_da_alloc), which made every state.json save cost 1.5 ms median, up to 9 ms.
Napi::Value Allocate(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0);
  int64_t length = info[1].As<Napi::Number>().Int64Value();
  if (length <= 0) return Napi::Boolean::New(env, true);
  if (fallocate(fd, 0, 0, (off_t)length) == 0) return Napi::Boolean::New(env, true);
  if (errno == EOPNOTSUPP || errno == ENOSYS) return Napi::Boolean::New(env, false);
  return ThrowErrno(env, "fallocate", errno);
}

// closeFd(fd)
Napi::Value CloseFd(const Napi::CallbackInfo &info) {
  close(IntArg(info, 0));
  return info.Env().Undefined();
}

}  // namespace tsrt
