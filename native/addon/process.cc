// The processes the runtime starts and waits for: the executor's clone from sealed memfds (R5), the plan
// decoder on its own, reaping through pidfds, signal forwarding and the pty proxy of a foreground `run`, and
// programs run in a container's namespaces (hooks).
#include "addon.h"

#include <csignal>
#include <cstring>
#include <string>
#include <vector>

extern "C" {
#include "../executor/executor.h"
#include "../executor/joined.h"
#include "../executor/plan.h"
}

#include <fcntl.h>
#include <linux/filter.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

// The sealed helper's and the executor's bytes, linked in from native/init/tsrt-init and
// native/executor/tsrt-executor (built first by hack/build.sh).
extern "C" const unsigned char tsrt_init_blob[];
extern "C" const unsigned char tsrt_init_blob_end[];
extern "C" const unsigned char tsrt_executor_blob[];
extern "C" const unsigned char tsrt_executor_blob_end[];
__asm__(
    ".section .rodata\n"
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

namespace tsrt {

// A sealed, executable memfd copy of an embedded program, or -1 with *err set.
static int SealedCopy(const char *name, const unsigned char *begin, const unsigned char *end, int *err) {
  size_t len = static_cast<size_t>(end - begin);
  Fd m(static_cast<int>(syscall(SYS_memfd_create, name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC)));
  if (!m.ok() && errno == EINVAL)  // kernels before 6.3 do not know MFD_EXEC; memfds are executable there
    m.reset(static_cast<int>(syscall(SYS_memfd_create, name, MFD_CLOEXEC | MFD_ALLOW_SEALING)));
  if (!m.ok()) {
    *err = errno;
    return -1;
  }
  const unsigned char *p = begin;
  size_t left = len;
  while (left > 0) {
    ssize_t w = write(m.get(), p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      *err = errno ? errno : EIO;
      return -1;
    }
    p += w;
    left -= static_cast<size_t>(w);
  }
  if (fcntl(m.get(), F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0) {
    *err = errno;
    return -1;
  }
  return m.release();
}

// tsrt-init, made once per process: the executor execs the user's program through it.
static int ShimFd(int *err) {
  static int fd = -1;
  if (fd < 0) fd = SealedCopy("tsrt-init", tsrt_init_blob, tsrt_init_blob_end, err);
  return fd;
}

// tsrt-executor, made once per process: every cloned child execs it at once (R5).
static int ExecutorFd(int *err) {
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

static int WaitPidfd(int pidfd, siginfo_t *si) {
  long r;
  do r = syscall(SYS_waitid, kPidfdIdtype, pidfd, si, WEXITED | __WALL, nullptr);
  while (r < 0 && errno == EINTR);
  return static_cast<int>(r);
}

static Napi::Object Status(Napi::Env env, const siginfo_t &si) {
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
static Napi::Value Reap(Napi::Env env, int pidfd) {
  siginfo_t si;
  memset(&si, 0, sizeof(si));
  if (WaitPidfd(pidfd, &si) < 0) return ThrowErrno(env, "waitid", errno);
  return Status(env, si);
}

// wait(pidfd) -> { code, signal }
Napi::Value Wait(const Napi::CallbackInfo &info) { return Reap(info.Env(), IntArg(info, 0)); }

// Foreground `run`: every signal the runtime gets goes to the container init, as runc forwards them.
static volatile sig_atomic_t g_forward_pidfd = -1;

static void Forward(int sig) {
  int saved = errno;
  if (g_forward_pidfd >= 0) syscall(SYS_pidfd_send_signal, g_forward_pidfd, sig, nullptr, 0);
  errno = saved;
}

static bool Forwardable(int sig) {
  switch (sig) {
    case SIGKILL:
    case SIGSTOP:
    case SIGCHLD:
    case SIGSEGV:
    case SIGBUS:
    case SIGILL:
    case SIGFPE:
    case SIGTRAP:
    case SIGURG:
    case SIGWINCH:
    case SIGPROF:
    case SIGVTALRM:
    case SIGSYS:
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
        if (write(master, &eof, 1) < 0) {
        }
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

  Fd target;
  if (nsFlags) {
    target.reset(static_cast<int>(syscall(SYS_pidfd_open, o.Get("pid").As<Napi::Number>().Int32Value(), 0)));
    if (!target.ok()) return ThrowErrno(env, "pidfd_open of the container process", errno);
  }
  int in[2];
  if (pipe2(in, O_CLOEXEC) < 0) return ThrowErrno(env, "pipe", errno);
  Fd in_read(in[0]), in_write(in[1]);
  Fd out(static_cast<int>(syscall(SYS_memfd_create, "tsrt-hook-output", MFD_CLOEXEC)));
  if (!out.ok()) return ThrowErrno(env, "memfd_create", errno);
  struct joined_spec spec = {target.get(),
                             nsFlags,
                             in_read.get(),
                             out.get(),
                             path.c_str(),
                             argv.data(),
                             envp.data(),
                             cwd.empty() ? nullptr : cwd.c_str(),
                             nullptr,
                             0,
                             0,
                             0};
  if (o.Has("seccomp") && o.Get("seccomp").IsBuffer()) {
    auto prog = o.Get("seccomp").As<Napi::Buffer<unsigned char>>();
    spec.seccomp = prog.Data();
    spec.seccomp_len = static_cast<unsigned int>(prog.Length() / sizeof(struct sock_filter));
    spec.seccomp_flags = o.Get("seccompFlags").As<Napi::Number>().Uint32Value();
    spec.no_new_privs = o.Get("noNewPrivs").ToBoolean().Value();
  }
  int child = -1, err = 0;
  int pid = joined_spawn(&spec, &child, &err);
  Fd pidfd(child);
  in_read.reset();
  target.reset();
  if (pid < 0) return ThrowErrno(env, "clone3", err);
  // A hook need not read its stdin: write what the pipe takes without blocking, then close (its EOF).
  fcntl(in_write.get(), F_SETFL, O_NONBLOCK);
  if (write(in_write.get(), input.data(), input.size()) < 0) {
  }
  in_write.reset();
  struct pollfd p = {pidfd.get(), POLLIN, 0};
  int n;
  do n = poll(&p, 1, timeoutMs > 0 ? timeoutMs : -1);
  while (n < 0 && errno == EINTR);
  bool timedOut = n == 0;
  if (timedOut) syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0);
  siginfo_t si;
  memset(&si, 0, sizeof(si));
  int r;
  do r = static_cast<int>(syscall(SYS_waitid, kPidfdIdtype, pidfd.get(), &si, WEXITED, nullptr));
  while (r < 0 && errno == EINTR);
  std::string output(65536, '\0');
  ssize_t got = pread(out.get(), output.data(), output.size(), 0);
  output.resize(got > 0 ? static_cast<size_t>(got) : 0);
  Napi::Object res = Status(env, si);
  res.Set("timedOut", Napi::Boolean::New(env, timedOut));
  res.Set("output", Napi::String::New(env, output));
  return res;
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
Napi::Value PidfdExited(const Napi::CallbackInfo &info) {
  return Napi::Boolean::New(info.Env(), PollIn(IntArg(info, 0), info.Length() > 1 ? IntArg(info, 1) : 0));
}

}  // namespace tsrt
