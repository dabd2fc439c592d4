// The addon's private header: the error helpers every file throws with, the fd guard, and the N-API functions
// addon.cc's Init exports, by file:
//   process.cc  the executor's clone (spawn), the plan decoder alone, waits, signal forwarding, the pty proxy,
//               programs run in a container's namespaces (hooks), pidfds
//   fds.cc      the sync socket, fds passed over unix sockets, the exec fifo, locks, polling
//   host.cc     what the runtime changes on the host itself: /proc/<pid> maps, loop devices, network devices,
//               bind mounts, idmapping user namespaces, the cgroup device filter
//   seccomp.cc  profiles compiled with libseccomp
#ifndef TSRT_ADDON_H
#define TSRT_ADDON_H

#include <napi.h>

#include <cerrno>
#include <string>

#include <unistd.h>

// native/addon/seccomp.cc
Napi::Value CompileSeccomp(const Napi::CallbackInfo &info);
Napi::Value SeccompInfo(const Napi::CallbackInfo &info);

namespace tsrt
{

// waitid(P_PIDFD) through the raw syscall: header versions disagree on the idtype_t spelling.
constexpr int kPidfdIdtype = 3;

std::string ErrnoName(int err);
// `syscall`, when given, tells the caller which step failed (as Node's own errors do).
Napi::Value ThrowErrno(Napi::Env env, const std::string &what, int err, const char *syscall = nullptr);

inline int IntArg(const Napi::CallbackInfo &info, size_t i)
{
	return info[i].As<Napi::Number>().Int32Value();
}

// An fd this call opened and closes on every way out of it, early returns and thrown errors included (errno is
// kept, so a ThrowErrno after the guard still names the failed call). release() hands the fd on instead: to
// JavaScript, which closes it with closeFd.
class Fd
{
      public:
	explicit Fd(int fd = -1) : fd_(fd)
	{
	}
	Fd(const Fd &) = delete;
	Fd &operator=(const Fd &) = delete;
	~Fd()
	{
		reset();
	}
	int get() const
	{
		return fd_;
	}
	bool ok() const
	{
		return fd_ >= 0;
	}
	int release()
	{
		int fd = fd_;
		fd_ = -1;
		return fd;
	}
	// Closes now (where the moment matters: a pipe's end that must reach EOF), or takes another fd.
	void reset(int fd = -1)
	{
		if (fd_ >= 0) {
			int err = errno;
			close(fd_);
			errno = err;
		}
		fd_ = fd;
	}

      private:
	int fd_;
};

// fds.cc
bool PollIn(int fd, int timeout);

// process.cc
Napi::Value Spawn(const Napi::CallbackInfo &info);
Napi::Value CheckPlan(const Napi::CallbackInfo &info);
Napi::Value Wait(const Napi::CallbackInfo &info);
Napi::Value WaitForeground(const Napi::CallbackInfo &info);
Napi::Value PtyProxy(const Napi::CallbackInfo &info);
Napi::Value RunJoined(const Napi::CallbackInfo &info);
Napi::Value PidfdOpen(const Napi::CallbackInfo &info);
Napi::Value PidfdSignal(const Napi::CallbackInfo &info);
Napi::Value PidfdExited(const Napi::CallbackInfo &info);

// fds.cc
Napi::Value Recv(const Napi::CallbackInfo &info);
Napi::Value Send(const Napi::CallbackInfo &info);
Napi::Value OpenInMountns(const Napi::CallbackInfo &info);
Napi::Value WaitReadable(const Napi::CallbackInfo &info);
Napi::Value MakeFifo(const Napi::CallbackInfo &info);
Napi::Value StartFifo(const Napi::CallbackInfo &info);
Napi::Value ConnectUnix(const Napi::CallbackInfo &info);
Napi::Value SocketPair(const Napi::CallbackInfo &info);
Napi::Value RecvFd(const Napi::CallbackInfo &info);
Napi::Value SendFdTo(const Napi::CallbackInfo &info);
Napi::Value Flock(const Napi::CallbackInfo &info);
Napi::Value OpenDir(const Napi::CallbackInfo &info);
Napi::Value Allocate(const Napi::CallbackInfo &info);
Napi::Value CloseFd(const Napi::CallbackInfo &info);

// host.cc
Napi::Value ProcWrite(const Napi::CallbackInfo &info);
Napi::Value LoopAttach(const Napi::CallbackInfo &info);
Napi::Value NetdevMove(const Napi::CallbackInfo &info);
Napi::Value BindMount(const Napi::CallbackInfo &info);
Napi::Value Unmount(const Napi::CallbackInfo &info);
Napi::Value MountDevice(const Napi::CallbackInfo &info);
Napi::Value UnmountNow(const Napi::CallbackInfo &info);
Napi::Value IdmapUserns(const Napi::CallbackInfo &info);
Napi::Value AttachDeviceFilter(const Napi::CallbackInfo &info);

} // namespace tsrt

#endif
