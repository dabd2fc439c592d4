// N-API surface of tsrt: mechanism only. Every function is synchronous and libuv-free, so the same addon
// loads in Node and in the Bun-compiled single executable. Policy (what to mount, which ids, which caps)
// lives in TypeScript; this file moves bytes and fds and calls the kernel.
#include <napi.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <string>
#include <vector>

extern "C" {
#include "../executor/executor.h"
#include "../executor/fdmsg.h"
#include "../executor/joined.h"
#include "../executor/plan.h"
#include "../executor/sync.h"
#include "netdev.h"
}

#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/filter.h>
#include <linux/loop.h>
#include <poll.h>
#include <linux/sched.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <sys/ioctl.h>
#include <unistd.h>

// native/addon/seccomp.cc
Napi::Value CompileSeccomp(const Napi::CallbackInfo &info);
Napi::Value SeccompInfo(const Napi::CallbackInfo &info);

// waitid(P_PIDFD) through the raw syscall: header versions disagree on the idtype_t spelling.
constexpr int kPidfdIdtype = 3;
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

// The sealed helper's and the executor's bytes, linked in from native/init/tsrt-init and
// native/executor/tsrt-executor (built first by hack/build.sh).
extern "C" const unsigned char tsrt_init_blob[];
extern "C" const unsigned char tsrt_init_blob_end[];
extern "C" const unsigned char tsrt_executor_blob[];
extern "C" const unsigned char tsrt_executor_blob_end[];
__asm__(".section .rodata\n"
        ".balign 16\n"
        ".globl tsrt_init_blob\n"
        "tsrt_init_blob:\n"
        ".incbin \"tsrt-init\"\n"
        ".globl tsrt_init_blob_end\n"
        "tsrt_init_blob_end:\n"
        ".balign 16\n"
        ".globl tsrt_executor_blob\n"
        "tsrt_executor_blob:\n"
        ".incbin \"tsrt-executor\"\n"
        ".globl tsrt_executor_blob_end\n"
        "tsrt_executor_blob_end:\n"
        ".previous\n");

namespace {

std::string ErrnoName(int err) {
  const char *name = strerrorname_np(err);
  return name ? name : "E" + std::to_string(err);
}

// `syscall`, when given, tells the caller which step failed (as Node's own errors do).
Napi::Value ThrowErrno(Napi::Env env, const std::string &what, int err, const char *syscall = nullptr) {
  Napi::Error e = Napi::Error::New(env, what + ": " + strerror(err));
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  e.Set("errno", Napi::Number::New(env, err));
  if (syscall) e.Set("syscall", Napi::String::New(env, syscall));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

int IntArg(const Napi::CallbackInfo &info, size_t i) {
  return info[i].As<Napi::Number>().Int32Value();
}

// A sealed, executable memfd copy of an embedded program, or -1 with *err set.
int SealedCopy(const char *name, const unsigned char *begin, const unsigned char *end, int *err) {
  size_t len = static_cast<size_t>(end - begin);
  int m = static_cast<int>(syscall(SYS_memfd_create, name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC));
  if (m < 0 && errno == EINVAL)  // kernels before 6.3 do not know MFD_EXEC; memfds are executable there
    m = static_cast<int>(syscall(SYS_memfd_create, name, MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (m < 0) {
    *err = errno;
    return -1;
  }
  const unsigned char *p = begin;
  size_t left = len;
  while (left > 0) {
    ssize_t w = write(m, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      *err = errno ? errno : EIO;
      close(m);
      return -1;
    }
    p += w;
    left -= static_cast<size_t>(w);
  }
  if (fcntl(m, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0) {
    *err = errno;
    close(m);
    return -1;
  }
  return m;
}

// tsrt-init, made once per process: the executor execs the user's program through it.
int ShimFd(int *err) {
  static int fd = -1;
  if (fd < 0) fd = SealedCopy("tsrt-init", tsrt_init_blob, tsrt_init_blob_end, err);
  return fd;
}

// tsrt-executor, made once per process: every cloned child execs it at once (R5).
int ExecutorFd(int *err) {
  static int fd = -1;
  if (fd < 0) fd = SealedCopy("tsrt-executor", tsrt_executor_blob, tsrt_executor_blob_end, err);
  return fd;
}

// spawn(plan: Buffer) -> { pid, pidfd, sock }
Napi::Value Spawn(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  auto buf = info[0].As<Napi::Buffer<unsigned char>>();
  struct tsrt_plan plan;
  const char *why = nullptr;
  if (plan_decode(buf.Data(), buf.Length(), &plan, &why) != 0) {
    Napi::Error e = Napi::Error::New(env, std::string("invalid launch plan: ") + why);
    e.Set("code", Napi::String::New(env, "EPLAN"));
    e.ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int err = 0;
  int shim = ShimFd(&err);
  if (shim < 0) {
    plan_free(&plan);
    return ThrowErrno(env, "memfd for the sealed helper", err);
  }
  int executor = ExecutorFd(&err);
  if (executor < 0) {
    plan_free(&plan);
    return ThrowErrno(env, "memfd for the sealed executor", err);
  }
  int pidfd = -1, sock = -1;
  const char *what = "clone3";
  int pid = executor_spawn(&plan, buf.Data(), buf.Length(), executor, shim, &pidfd, &sock, &err, &what);
  // The executor decodes its own copy of the plan; ours only said which fds it needs.
  plan_free(&plan);
  if (pid < 0) return ThrowErrno(env, what, err);
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", pid);
  out.Set("pidfd", pidfd);
  out.Set("sock", sock);
  return out;
}

// checkPlan(plan: Buffer) -> null | reason. The decoder alone, for codec tests and fuzzing.
Napi::Value CheckPlan(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  auto buf = info[0].As<Napi::Buffer<unsigned char>>();
  struct tsrt_plan plan;
  const char *why = nullptr;
  if (plan_decode(buf.Data(), buf.Length(), &plan, &why) != 0) return Napi::String::New(env, why);
  Napi::Object out = Napi::Object::New(env);
  out.Set("steps", plan.nsteps);
  out.Set("args", plan.nargs);
  out.Set("rootfs", plan.rootfs);
  // What a wrapped length would change first: the lists' sizes and the strings around them.
  out.Set("env", plan.nenv);
  out.Set("cwd", plan.cwd);
  Napi::Array join = Napi::Array::New(env, plan.njoin);
  for (uint32_t i = 0; i < plan.njoin; i++) join.Set(i, plan.join[i].path);
  out.Set("join", join);
  size_t argBytes = 0;
  for (uint32_t i = 0; i < plan.nargs; i++) argBytes += strlen(plan.args[i]);
  out.Set("argBytes", static_cast<double>(argBytes));
  plan_free(&plan);
  return out;
}

// One recvmsg into buf (close-on-exec for a passed fd): the byte count (or -errno), and *fd the fd that came
// with it over SCM_RIGHTS, or -1.
ssize_t RecvWithFd(int sock, void *buf, size_t len, int *fd, bool *truncated) {
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
  if (n < 0) {
    if (n == -ECONNRESET) return env.Null();
    return ThrowErrno(env, "sync socket", static_cast<int>(-n));
  }
  if (n == 0) {
    if (fd >= 0) close(fd);
    return env.Null();
  }
  if (n != static_cast<ssize_t>(sizeof(m)) || truncated) {
    if (fd >= 0) close(fd);
    return ThrowErrno(env, "sync socket: malformed message", EPROTO);
  }
  m.detail[sizeof(m.detail) - 1] = 0;
  Napi::Object out = Napi::Object::New(env);
  out.Set("type", m.type);
  out.Set("step", m.step);
  out.Set("err", m.err);
  out.Set("errname", m.err > 0 ? ErrnoName(m.err) : "");
  out.Set("pid", m.pid);
  out.Set("detail", m.detail);
  out.Set("fd", fd);
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
  int target = static_cast<int>(syscall(SYS_pidfd_open, IntArg(info, 0), 0));
  if (target < 0) return ThrowErrno(env, "pidfd_open of the container process", errno);
  int err = 0;
  int fd = joined_open(target, path.c_str(), &err);
  close(target);
  if (fd < 0) return ThrowErrno(env, "open " + path, err);
  return Napi::Number::New(env, fd);
}

int WaitPidfd(int pidfd, siginfo_t *si) {
  long r;
  do r = syscall(SYS_waitid, kPidfdIdtype, pidfd, si, WEXITED | __WALL, nullptr);
  while (r < 0 && errno == EINTR);
  return static_cast<int>(r);
}

Napi::Object Status(Napi::Env env, const siginfo_t &si) {
  Napi::Object out = Napi::Object::New(env);
  if (si.si_code == CLD_EXITED) {
    out.Set("code", si.si_status);
    out.Set("signal", 0);
  } else {
    out.Set("code", 128 + si.si_status);
    out.Set("signal", si.si_status);
  }
  return out;
}

// Blocks until the process behind pidfd exits, reaps it, and returns its status.
Napi::Value Reap(Napi::Env env, int pidfd) {
  siginfo_t si;
  memset(&si, 0, sizeof(si));
  if (WaitPidfd(pidfd, &si) < 0) return ThrowErrno(env, "waitid", errno);
  return Status(env, si);
}

// wait(pidfd) -> { code, signal }
Napi::Value Wait(const Napi::CallbackInfo &info) {
  return Reap(info.Env(), IntArg(info, 0));
}

// Foreground `run`: every signal the runtime gets goes to the container init, as runc forwards them.
volatile sig_atomic_t g_forward_pidfd = -1;

void Forward(int sig) {
  int saved = errno;
  if (g_forward_pidfd >= 0) syscall(SYS_pidfd_send_signal, g_forward_pidfd, sig, nullptr, 0);
  errno = saved;
}

bool Forwardable(int sig) {
  switch (sig) {
    case SIGKILL: case SIGSTOP: case SIGCHLD: case SIGSEGV: case SIGBUS: case SIGILL: case SIGFPE:
    case SIGTRAP: case SIGURG: case SIGWINCH: case SIGPROF: case SIGVTALRM: case SIGSYS:
      return false;
    default:
      return sig < 32 || sig >= SIGRTMIN;
  }
}

struct Forwarding {
  struct sigaction old[65];
  explicit Forwarding(int pidfd) {
    g_forward_pidfd = pidfd;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = Forward;
    sigemptyset(&sa.sa_mask);
    for (int s = 1; s < 65; s++)
      if (Forwardable(s)) sigaction(s, &sa, &old[s]);
  }
  ~Forwarding() {
    for (int s = 1; s < 65; s++)
      if (Forwardable(s)) sigaction(s, &old[s], nullptr);
    g_forward_pidfd = -1;
  }
};

// waitForeground(pidfd) -> { code, signal }
Napi::Value WaitForeground(const Napi::CallbackInfo &info) {
  int pidfd = IntArg(info, 0);
  Forwarding fw(pidfd);
  return Reap(info.Env(), pidfd);
}

// ptyProxy(master, pidfd) -> { code, signal }: foreground `run` of a terminal container without a console
// socket. Copies stdin to the pty and the pty to stdout until the init exits; the caller's tty goes raw.
Napi::Value PtyProxy(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int master = IntArg(info, 0), pidfd = IntArg(info, 1);
  Forwarding fw(pidfd);
  struct termios saved;
  bool raw = tcgetattr(0, &saved) == 0;
  if (raw) {
    struct termios t = saved;
    cfmakeraw(&t);
    tcsetattr(0, TCSANOW, &t);
    struct winsize ws;
    if (ioctl(0, TIOCGWINSZ, &ws) == 0) ioctl(master, TIOCSWINSZ, &ws);
  }
  char buf[16384];
  bool in_open = true, out_open = true;
  for (;;) {
    struct pollfd p[3] = {{pidfd, POLLIN, 0}, {master, POLLIN, 0}, {0, POLLIN, 0}};
    int n = poll(p, in_open ? 3 : 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    if (out_open && (p[1].revents & (POLLIN | POLLHUP))) {
      ssize_t r = read(master, buf, sizeof(buf));
      if (r > 0) {
        ssize_t off = 0;
        while (off < r) {
          ssize_t w = write(1, buf + off, static_cast<size_t>(r - off));
          if (w < 0 && errno == EINTR) continue;
          if (w <= 0) break;
          off += w;
        }
      } else if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) {
        out_open = false;
      }
    }
    if (in_open && (p[2].revents & (POLLIN | POLLHUP))) {
      ssize_t r = read(0, buf, sizeof(buf));
      if (r > 0) {
        if (write(master, buf, static_cast<size_t>(r)) < 0) in_open = false;
      } else if (r == 0 || (r < 0 && errno != EINTR)) {
        in_open = false;
        static const char eof = 4;  // ^D: the pty's end of input
        if (write(master, &eof, 1) < 0) {}
      }
    }
    if ((p[0].revents & POLLIN) && (!out_open || !(p[1].revents & POLLIN))) break;
  }
  if (raw) tcsetattr(0, TCSANOW, &saved);
  return Reap(env, pidfd);
}

// runJoined({ pid, nsFlags, path, args, env, input, timeoutMs, cwd?, seccomp?, seccompFlags?, noNewPrivs? })
// -> { code, signal, timedOut, output }: runs a program inside the namespaces (nsFlags, CLONE_NEW*) of process
// `pid`, in cwd there, under the seccomp program if given, the input on its stdin, stdout and stderr
// collected, killed after timeoutMs (0: no limit).
Napi::Value RunJoined(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Object o = info[0].As<Napi::Object>();
  int nsFlags = o.Get("nsFlags").As<Napi::Number>().Int32Value();
  int timeoutMs = o.Get("timeoutMs").As<Napi::Number>().Int32Value();
  std::string path = o.Get("path").As<Napi::String>();
  std::string input = o.Get("input").As<Napi::String>();
  std::string cwd = o.Has("cwd") && o.Get("cwd").IsString() ? o.Get("cwd").As<Napi::String>().Utf8Value() : "";
  auto strings = [](Napi::Array a) {
    std::vector<std::string> v;
    for (uint32_t i = 0; i < a.Length(); i++) v.push_back(a.Get(i).As<Napi::String>());
    return v;
  };
  std::vector<std::string> args = strings(o.Get("args").As<Napi::Array>());
  std::vector<std::string> envs = strings(o.Get("env").As<Napi::Array>());
  std::vector<char *> argv, envp;
  for (auto &a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto &e : envs) envp.push_back(e.data());
  envp.push_back(nullptr);

  int target = -1;
  if (nsFlags) {
    target = static_cast<int>(syscall(SYS_pidfd_open, o.Get("pid").As<Napi::Number>().Int32Value(), 0));
    if (target < 0) return ThrowErrno(env, "pidfd_open of the container process", errno);
  }
  int in[2];
  if (pipe2(in, O_CLOEXEC) < 0) {
    int err = errno;
    if (target >= 0) close(target);
    return ThrowErrno(env, "pipe", err);
  }
  int out = static_cast<int>(syscall(SYS_memfd_create, "tsrt-hook-output", MFD_CLOEXEC));
  if (out < 0) {
    int err = errno;
    close(in[0]);
    close(in[1]);
    if (target >= 0) close(target);
    return ThrowErrno(env, "memfd_create", err);
  }
  struct joined_spec spec = {target, nsFlags, in[0], out, path.c_str(), argv.data(), envp.data(),
                             cwd.empty() ? nullptr : cwd.c_str(), nullptr, 0, 0, 0};
  if (o.Has("seccomp") && o.Get("seccomp").IsBuffer()) {
    auto prog = o.Get("seccomp").As<Napi::Buffer<unsigned char>>();
    spec.seccomp = prog.Data();
    spec.seccomp_len = static_cast<unsigned int>(prog.Length() / sizeof(struct sock_filter));
    spec.seccomp_flags = o.Get("seccompFlags").As<Napi::Number>().Uint32Value();
    spec.no_new_privs = o.Get("noNewPrivs").ToBoolean().Value();
  }
  int pidfd = -1, err = 0;
  int pid = joined_spawn(&spec, &pidfd, &err);
  close(in[0]);
  if (target >= 0) close(target);
  if (pid < 0) {
    close(in[1]);
    close(out);
    return ThrowErrno(env, "clone3", err);
  }
  // A hook need not read its stdin: write what the pipe takes without blocking, then close.
  fcntl(in[1], F_SETFL, O_NONBLOCK);
  if (write(in[1], input.data(), input.size()) < 0) {}
  close(in[1]);
  struct pollfd p = {pidfd, POLLIN, 0};
  int n;
  do n = poll(&p, 1, timeoutMs > 0 ? timeoutMs : -1);
  while (n < 0 && errno == EINTR);
  bool timedOut = n == 0;
  if (timedOut) syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
  siginfo_t si;
  memset(&si, 0, sizeof(si));
  int r;
  do r = static_cast<int>(syscall(SYS_waitid, kPidfdIdtype, pidfd, &si, WEXITED, nullptr));
  while (r < 0 && errno == EINTR);
  close(pidfd);
  std::string output(65536, '\0');
  ssize_t got = pread(out, output.data(), output.size(), 0);
  close(out);
  output.resize(got > 0 ? static_cast<size_t>(got) : 0);
  Napi::Object res = Status(env, si);
  res.Set("timedOut", Napi::Boolean::New(env, timedOut));
  res.Set("output", Napi::String::New(env, output));
  return res;
}

// procWrite(pid, name, data): writes one file of /proc/<pid> (uid_map, gid_map, setgroups) through a handle
// verified to be procfs (R2), never a path that could resolve elsewhere: /proc/<pid> is opened without
// following symlinks, checked with fstatfs, and the file is opened beneath it without symlinks or mount
// crossings.
Napi::Value ProcWrite(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int pid = IntArg(info, 0);
  std::string name = info[1].As<Napi::String>();
  std::string data = info[2].As<Napi::String>();
  std::string where = "/proc/" + std::to_string(pid);
  int dir = open(where.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dir < 0) return ThrowErrno(env, "open " + where, errno);
  struct statfs sf;
  if (fstatfs(dir, &sf) < 0 || sf.f_type != PROC_SUPER_MAGIC) {
    close(dir);
    return ThrowErrno(env, where + " is not procfs", EXDEV);
  }
  struct open_how how;
  memset(&how, 0, sizeof(how));
  how.flags = O_WRONLY | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  int fd = static_cast<int>(syscall(SYS_openat2, dir, name.c_str(), &how, sizeof(how)));
  int err = errno;
  close(dir);
  if (fd < 0) return ThrowErrno(env, "open " + where + "/" + name, err);
  ssize_t w = write(fd, data.data(), data.size());
  err = errno;
  close(fd);
  if (w != static_cast<ssize_t>(data.size())) return ThrowErrno(env, "write " + where + "/" + name, w < 0 ? err : EIO);
  return env.Undefined();
}

// pidfdOpen(pid) -> fd | -errno (ESRCH is an answer, not an exception)
Napi::Value PidfdOpen(const Napi::CallbackInfo &info) {
  long fd = syscall(SYS_pidfd_open, IntArg(info, 0), 0);
  if (fd < 0) return Napi::Number::New(info.Env(), -errno);
  fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
  return Napi::Number::New(info.Env(), static_cast<double>(fd));
}

// pidfdSignal(pidfd, sig) -> 0 | -errno
Napi::Value PidfdSignal(const Napi::CallbackInfo &info) {
  long r = syscall(SYS_pidfd_send_signal, IntArg(info, 0), IntArg(info, 1), nullptr, 0);
  return Napi::Number::New(info.Env(), r < 0 ? -errno : 0);
}

// pidfdExited(pidfd, timeoutMs) -> bool: the process has exited (zombie or reaped) within the timeout
// (-1: wait for ever), without reaping it. Works for processes that are not our children.
static bool PollIn(int fd, int timeout) {
  struct pollfd p = {fd, POLLIN, 0};
  int n;
  do n = poll(&p, 1, timeout);
  while (n < 0 && errno == EINTR);
  return n > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR));
}

Napi::Value PidfdExited(const Napi::CallbackInfo &info) {
  return Napi::Boolean::New(info.Env(), PollIn(IntArg(info, 0), info.Length() > 1 ? IntArg(info, 1) : 0));
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
  int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Napi::String::New(env, "missing");
    return ThrowErrno(env, "open " + path, errno);
  }
  const char *result = "stopped";
  for (;;) {
    struct pollfd p[2] = {{fd, POLLIN, 0}, {pidfd, POLLIN, 0}};
    int n = poll(p, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      return ThrowErrno(env, "poll exec fifo", err);
    }
    if (p[0].revents & POLLIN) {
      char c;
      ssize_t r = read(fd, &c, 1);
      if (r == 1) result = "ok";
      break;
    }
    if (p[1].revents) break;
    if (p[0].revents & POLLHUP) break;
  }
  close(fd);
  return Napi::String::New(env, result);
}

// A connected SOCK_STREAM unix socket to path, or -1 with *err set.
int ConnectTo(const std::string &path, int *err) {
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    *err = ENAMETOOLONG;
    return -1;
  }
  memcpy(addr.sun_path, path.c_str(), path.size());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *err = errno;
    return -1;
  }
  if (connect(fd, reinterpret_cast<struct sockaddr *>(&addr), sizeof(addr)) < 0) {
    *err = errno;
    close(fd);
    return -1;
  }
  return fd;
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
  int fd = ConnectTo(path, &err);
  if (fd < 0) return ThrowErrno(env, "connect " + path, err, "connect");
  size_t off = 0;
  bool first = true;
  while (off < data.size()) {
    struct fdmsg fm;
    // The fd rides on the first bytes only.
    struct msghdr *mh = fdmsg_init(&fm, const_cast<char *>(data.data()) + off, data.size() - off, first ? passed : FDMSG_NONE);
    ssize_t n = sendmsg(fd, mh, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = n < 0 ? errno : EPIPE;
      close(fd);
      return ThrowErrno(env, "send to " + path, err);
    }
    first = false;
    off += static_cast<size_t>(n);
  }
  close(fd);
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

// loopAttach(fd, offset, size, readOnly) -> { device, fd }: a free loop device backed by the already-open
// (and already-checked) file `fd` at [offset, offset+size), configured in one LOOP_CONFIGURE with autoclear, so
// no path is resolved between the caller's checks and the attach. The returned fd holds the device until the
// caller has mounted it; closing it then leaves the mount as the last user, and the kernel frees the device
// at unmount (or at once, when nothing was mounted).
Napi::Value LoopAttach(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int backing = IntArg(info, 0);
  int64_t offset = info[1].As<Napi::Number>().Int64Value();
  int64_t size = info[2].As<Napi::Number>().Int64Value();
  bool readOnly = info[3].As<Napi::Boolean>().Value();
  if (offset < 0 || size < 0) return ThrowErrno(env, "loop device offset/size", EINVAL);
  int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (ctl < 0) return ThrowErrno(env, "open /dev/loop-control", errno);
  // Another process may take the free device between GET_FREE and CONFIGURE (EBUSY): ask again.
  for (int attempt = 0; attempt < 64; attempt++) {
    int n = ioctl(ctl, LOOP_CTL_GET_FREE);
    if (n < 0) {
      int err = errno;
      close(ctl);
      return ThrowErrno(env, "LOOP_CTL_GET_FREE", err);
    }
    std::string device = "/dev/loop" + std::to_string(n);
    int dev = open(device.c_str(), (readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (dev < 0) {
      int err = errno;
      close(ctl);
      return ThrowErrno(env, "open " + device, err);
    }
    // The node must be the loop device itself (R3: devices verified by inode, not by name).
    struct stat st;
    if (fstat(dev, &st) < 0 || !S_ISBLK(st.st_mode) || major(st.st_rdev) != 7) {
      close(dev);
      close(ctl);
      return ThrowErrno(env, device + " is not a loop block device", ENODEV);
    }
    struct loop_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.fd = static_cast<uint32_t>(backing);
    cfg.info.lo_offset = static_cast<uint64_t>(offset);
    cfg.info.lo_sizelimit = static_cast<uint64_t>(size);
    cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR | (readOnly ? LO_FLAGS_READ_ONLY : 0);
    if (ioctl(dev, LOOP_CONFIGURE, &cfg) == 0) {
      close(ctl);
      Napi::Object out = Napi::Object::New(env);
      out.Set("device", device);
      out.Set("fd", dev);
      return out;
    }
    int err = errno;
    close(dev);
    if (err != EBUSY) {
      close(ctl);
      return ThrowErrno(env, "LOOP_CONFIGURE " + device, err);
    }
  }
  close(ctl);
  return ThrowErrno(env, "no free loop device", EBUSY);
}

// closeFd(fd)
// netdevMove(fromNs, name, toNs, newName): fds of network namespaces, -1 for the caller's own.
Napi::Value NetdevMove(const Napi::CallbackInfo &info) {
  std::string name = info[1].As<Napi::String>().Utf8Value();
  std::string newName = info[3].As<Napi::String>().Utf8Value();
  const char *why = "";
  int r = netdev_move(IntArg(info, 0), name.c_str(), IntArg(info, 2), newName.c_str(), &why);
  if (r < 0) return ThrowErrno(info.Env(), why, -r);
  return info.Env().Undefined();
}

// bindMount(source, target): pins a namespace file (nsfs) on a file in the state directory.
Napi::Value BindMount(const Napi::CallbackInfo &info) {
  std::string source = info[0].As<Napi::String>().Utf8Value();
  std::string target = info[1].As<Napi::String>().Utf8Value();
  if (mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) < 0)
    return ThrowErrno(info.Env(), "bind " + source + " on " + target, errno);
  return info.Env().Undefined();
}

// unmount(target): lazily; a target that is not mounted (any more) is not an error.
Napi::Value Unmount(const Napi::CallbackInfo &info) {
  std::string target = info[0].As<Napi::String>().Utf8Value();
  if (umount2(target.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && errno != EINVAL && errno != ENOENT)
    return ThrowErrno(info.Env(), "unmount " + target, errno);
  return info.Env().Undefined();
}

// idmapUserns(uidMap, gidMap): an fd of a new user namespace with these maps ("inside outside count" lines),
// for MOUNT_ATTR_IDMAP. A clone3 child holds the namespace while we write its maps and open it, then dies.
Napi::Value IdmapUserns(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string maps[2] = {info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::String>().Utf8Value()};
  struct clone_args ca;
  memset(&ca, 0, sizeof(ca));
  int pidfd = -1;
  ca.flags = CLONE_NEWUSER | CLONE_PIDFD;
  ca.pidfd = reinterpret_cast<uint64_t>(&pidfd);
  ca.exit_signal = SIGCHLD;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  long pid = syscall(SYS_clone3, &ca, sizeof(ca));
  if (pid == 0) {
    // Raw syscalls only (a fork of a threaded process); all signals stay blocked, SIGKILL ends us.
    for (;;) syscall(SYS_pause);
  }
  int err = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) return ThrowErrno(env, "clone a user namespace for an idmapped mount", err);
  const char *files[2] = {"uid_map", "gid_map"};
  int nsfd = -1;
  std::string what;
  err = 0;
  for (int i = 0; i < 2 && !err; i++) {
    std::string path = "/proc/" + std::to_string(pid) + "/" + files[i];
    int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, maps[i].data(), maps[i].size()) != static_cast<ssize_t>(maps[i].size())) {
      err = errno ? errno : EIO;
      what = "write " + path;
    }
    if (fd >= 0) close(fd);
  }
  if (!err) {
    std::string path = "/proc/" + std::to_string(pid) + "/ns/user";
    nsfd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (nsfd < 0) {
      err = errno;
      what = "open " + path;
    }
  }
  syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
  siginfo_t si;
  syscall(SYS_waitid, kPidfdIdtype, pidfd, &si, WEXITED, nullptr);
  close(pidfd);
  if (err) return ThrowErrno(env, what, err);
  return Napi::Number::New(env, nsfd);
}

Napi::Value CloseFd(const Napi::CallbackInfo &info) {
  close(IntArg(info, 0));
  return info.Env().Undefined();
}

int Bpf(int cmd, union bpf_attr *attr) {
  return static_cast<int>(syscall(SYS_bpf, cmd, attr, sizeof(*attr)));
}

// attachDeviceFilter(cgroupDir, insns) -> number of programs replaced. Loads a BPF_PROG_TYPE_CGROUP_DEVICE
// program and attaches it to the cgroup2 directory, then detaches the device programs that were there
// before, so an update swaps the rules without a moment of no filter at all.
Napi::Value AttachDeviceFilter(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string dir = info[0].As<Napi::String>();
  Napi::Buffer<uint8_t> insns = info[1].As<Napi::Buffer<uint8_t>>();
  int cg = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cg < 0) return ThrowErrno(env, "open " + dir, errno);

  static char log[16384];
  union bpf_attr load;
  memset(&load, 0, sizeof(load));
  load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  load.insns = reinterpret_cast<uint64_t>(insns.Data());
  load.insn_cnt = static_cast<uint32_t>(insns.Length() / 8);
  load.license = reinterpret_cast<uint64_t>("Apache");
  int prog = Bpf(BPF_PROG_LOAD, &load);
  if (prog < 0) {
    int err = errno;
    // Ask again with the verifier's log, which says which instruction it refused.
    log[0] = 0;
    load.log_level = 1;
    load.log_buf = reinterpret_cast<uint64_t>(log);
    load.log_size = sizeof(log);
    Bpf(BPF_PROG_LOAD, &load);
    close(cg);
    std::string why = log[0] ? std::string(" (verifier: ") + log + ")" : "";
    return ThrowErrno(env, "bpf(BPF_PROG_LOAD)" + why, err);
  }

  uint32_t old_ids[64];
  union bpf_attr query;
  memset(&query, 0, sizeof(query));
  query.query.target_fd = static_cast<uint32_t>(cg);
  query.query.attach_type = BPF_CGROUP_DEVICE;
  query.query.prog_ids = reinterpret_cast<uint64_t>(old_ids);
  query.query.prog_cnt = 64;
  uint32_t nold = 0;
  uint32_t old_flags = 0;
  if (Bpf(BPF_PROG_QUERY, &query) == 0) {
    nold = query.query.prog_cnt;
    old_flags = query.query.attach_flags;
  }

  union bpf_attr attach;
  memset(&attach, 0, sizeof(attach));
  attach.target_fd = static_cast<uint32_t>(cg);
  attach.attach_bpf_fd = static_cast<uint32_t>(prog);
  attach.attach_type = BPF_CGROUP_DEVICE;
  // A single program attached without BPF_F_ALLOW_MULTI is replaced by attaching without it.
  bool single = nold == 1 && !(old_flags & BPF_F_ALLOW_MULTI);
  attach.attach_flags = single ? 0 : BPF_F_ALLOW_MULTI;
  if (Bpf(BPF_PROG_ATTACH, &attach) < 0) {
    int err = errno;
    close(prog);
    close(cg);
    return ThrowErrno(env, "bpf(BPF_PROG_ATTACH) " + dir, err);
  }
  uint32_t replaced = single ? 1 : 0;
  for (uint32_t i = 0; !single && i < nold && i < 64; i++) {
    union bpf_attr byid;
    memset(&byid, 0, sizeof(byid));
    byid.prog_id = old_ids[i];
    int ofd = Bpf(BPF_PROG_GET_FD_BY_ID, &byid);
    if (ofd < 0) continue;
    union bpf_attr detach;
    memset(&detach, 0, sizeof(detach));
    detach.target_fd = static_cast<uint32_t>(cg);
    detach.attach_bpf_fd = static_cast<uint32_t>(ofd);
    detach.attach_type = BPF_CGROUP_DEVICE;
    if (Bpf(BPF_PROG_DETACH, &detach) == 0) replaced++;
    close(ofd);
  }
  close(prog);
  close(cg);
  return Napi::Number::New(env, replaced);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("spawn", Napi::Function::New(env, Spawn));
  exports.Set("checkPlan", Napi::Function::New(env, CheckPlan));
  exports.Set("recv", Napi::Function::New(env, Recv));
  exports.Set("send", Napi::Function::New(env, Send));
  exports.Set("wait", Napi::Function::New(env, Wait));
  exports.Set("waitForeground", Napi::Function::New(env, WaitForeground));
  exports.Set("ptyProxy", Napi::Function::New(env, PtyProxy));
  exports.Set("runJoined", Napi::Function::New(env, RunJoined));
  exports.Set("openInMountns", Napi::Function::New(env, OpenInMountns));
  exports.Set("procWrite", Napi::Function::New(env, ProcWrite));
  exports.Set("pidfdOpen", Napi::Function::New(env, PidfdOpen));
  exports.Set("pidfdSignal", Napi::Function::New(env, PidfdSignal));
  exports.Set("pidfdExited", Napi::Function::New(env, PidfdExited));
  exports.Set("waitReadable", Napi::Function::New(env, WaitReadable));
  exports.Set("makeFifo", Napi::Function::New(env, MakeFifo));
  exports.Set("startFifo", Napi::Function::New(env, StartFifo));
  exports.Set("connectUnix", Napi::Function::New(env, ConnectUnix));
  exports.Set("socketPair", Napi::Function::New(env, SocketPair));
  exports.Set("recvFd", Napi::Function::New(env, RecvFd));
  exports.Set("sendFdTo", Napi::Function::New(env, SendFdTo));
  exports.Set("compileSeccomp", Napi::Function::New(env, CompileSeccomp));
  exports.Set("seccompInfo", Napi::Function::New(env, SeccompInfo));
  exports.Set("flock", Napi::Function::New(env, Flock));
  exports.Set("openDir", Napi::Function::New(env, OpenDir));
  exports.Set("allocate", Napi::Function::New(env, Allocate));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
  exports.Set("netdevMove", Napi::Function::New(env, NetdevMove));
  exports.Set("idmapUserns", Napi::Function::New(env, IdmapUserns));
  exports.Set("bindMount", Napi::Function::New(env, BindMount));
  exports.Set("unmount", Napi::Function::New(env, Unmount));
  exports.Set("loopAttach", Napi::Function::New(env, LoopAttach));
  exports.Set("attachDeviceFilter", Napi::Function::New(env, AttachDeviceFilter));
  return exports;
}

}  // namespace

NODE_API_MODULE(tsrt, Init)
