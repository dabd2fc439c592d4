// What the runtime changes on the host itself, each through a handle checked first: /proc/<pid> id maps (R2),
// loop devices (R3), network devices, bind mounts of namespace files, idmapping user namespaces and the
// cgroup device filter.
#include "addon.h"

#include <csignal>
#include <cstring>
#include <string>

extern "C" {
#include "netdev.h"
}

#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/loop.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

namespace tsrt {

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
  Fd dir(open(where.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir.ok()) return ThrowErrno(env, "open " + where, errno);
  struct statfs sf;
  if (fstatfs(dir.get(), &sf) < 0 || sf.f_type != PROC_SUPER_MAGIC)
    return ThrowErrno(env, where + " is not procfs", EXDEV);
  struct open_how how;
  memset(&how, 0, sizeof(how));
  how.flags = O_WRONLY | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  Fd fd(static_cast<int>(syscall(SYS_openat2, dir.get(), name.c_str(), &how, sizeof(how))));
  if (!fd.ok()) return ThrowErrno(env, "open " + where + "/" + name, errno);
  ssize_t w = write(fd.get(), data.data(), data.size());
  int err = errno;
  if (w != static_cast<ssize_t>(data.size())) return ThrowErrno(env, "write " + where + "/" + name, w < 0 ? err : EIO);
  return env.Undefined();
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
  Fd ctl(open("/dev/loop-control", O_RDWR | O_CLOEXEC));
  if (!ctl.ok()) return ThrowErrno(env, "open /dev/loop-control", errno);
  // Another process may take the free device between GET_FREE and CONFIGURE (EBUSY): ask again.
  for (int attempt = 0; attempt < 64; attempt++) {
    int n = ioctl(ctl.get(), LOOP_CTL_GET_FREE);
    if (n < 0) return ThrowErrno(env, "LOOP_CTL_GET_FREE", errno);
    std::string device = "/dev/loop" + std::to_string(n);
    Fd dev(open(device.c_str(), (readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC));
    if (!dev.ok()) return ThrowErrno(env, "open " + device, errno);
    // The node must be the loop device itself (R3: devices verified by inode, not by name).
    struct stat st;
    if (fstat(dev.get(), &st) < 0 || !S_ISBLK(st.st_mode) || major(st.st_rdev) != 7)
      return ThrowErrno(env, device + " is not a loop block device", ENODEV);
    struct loop_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.fd = static_cast<uint32_t>(backing);
    cfg.info.lo_offset = static_cast<uint64_t>(offset);
    cfg.info.lo_sizelimit = static_cast<uint64_t>(size);
    cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR | (readOnly ? LO_FLAGS_READ_ONLY : 0);
    if (ioctl(dev.get(), LOOP_CONFIGURE, &cfg) == 0) {
      Napi::Object out = Napi::Object::New(env);
      out.Set("device", device);
      out.Set("fd", dev.release());
      return out;
    }
    if (errno != EBUSY) return ThrowErrno(env, "LOOP_CONFIGURE " + device, errno);
  }
  return ThrowErrno(env, "no free loop device", EBUSY);
}

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

// mountDevice(device, target, fsType, readOnly): a block device (an attached loop device) mounted nodev,
// as `mount -t TYPE -o ro,nodev DEVICE TARGET` did, without a child process (util-linux's mount started,
// loaded its locale and libraries and wrote nothing we use: about a third of `exec image.sif true`).
Napi::Value MountDevice(const Napi::CallbackInfo &info) {
  std::string device = info[0].As<Napi::String>().Utf8Value();
  std::string target = info[1].As<Napi::String>().Utf8Value();
  std::string type = info[2].As<Napi::String>().Utf8Value();
  unsigned long flags = MS_NODEV | (info[3].As<Napi::Boolean>().Value() ? MS_RDONLY : 0);
  if (mount(device.c_str(), target.c_str(), type.c_str(), flags, nullptr) < 0)
    return ThrowErrno(info.Env(), "mount " + device + " on " + target, errno, "mount");
  return info.Env().Undefined();
}

// unmountNow(target): umount2 without MNT_DETACH, as umount(8) does: a busy mount is an error, not hidden.
Napi::Value UnmountNow(const Napi::CallbackInfo &info) {
  std::string target = info[0].As<Napi::String>().Utf8Value();
  if (umount2(target.c_str(), UMOUNT_NOFOLLOW) < 0) return ThrowErrno(info.Env(), "umount " + target, errno, "umount2");
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
  Fd holder(pidfd);
  const char *files[2] = {"uid_map", "gid_map"};
  Fd nsfd;
  std::string what;
  err = 0;
  for (int i = 0; i < 2 && !err; i++) {
    std::string path = "/proc/" + std::to_string(pid) + "/" + files[i];
    Fd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd.ok() || write(fd.get(), maps[i].data(), maps[i].size()) != static_cast<ssize_t>(maps[i].size())) {
      err = errno ? errno : EIO;
      what = "write " + path;
    }
  }
  if (!err) {
    std::string path = "/proc/" + std::to_string(pid) + "/ns/user";
    nsfd.reset(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!nsfd.ok()) {
      err = errno;
      what = "open " + path;
    }
  }
  // The holder goes whatever happened: the namespace lives on in nsfd alone.
  syscall(SYS_pidfd_send_signal, holder.get(), SIGKILL, nullptr, 0);
  siginfo_t si;
  syscall(SYS_waitid, kPidfdIdtype, holder.get(), &si, WEXITED, nullptr);
  if (err) return ThrowErrno(env, what, err);
  return Napi::Number::New(env, nsfd.release());
}

static int Bpf(int cmd, union bpf_attr *attr) { return static_cast<int>(syscall(SYS_bpf, cmd, attr, sizeof(*attr))); }

// attachDeviceFilter(cgroupDir, insns) -> number of programs replaced. Loads a BPF_PROG_TYPE_CGROUP_DEVICE
// program and attaches it to the cgroup2 directory, then detaches the device programs that were there
// before, so an update swaps the rules without a moment of no filter at all.
Napi::Value AttachDeviceFilter(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string dir = info[0].As<Napi::String>();
  Napi::Buffer<uint8_t> insns = info[1].As<Napi::Buffer<uint8_t>>();
  Fd cg(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cg.ok()) return ThrowErrno(env, "open " + dir, errno);

  static char log[16384];
  union bpf_attr load;
  memset(&load, 0, sizeof(load));
  load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  load.insns = reinterpret_cast<uint64_t>(insns.Data());
  load.insn_cnt = static_cast<uint32_t>(insns.Length() / 8);
  load.license = reinterpret_cast<uint64_t>("Apache");
  Fd prog(Bpf(BPF_PROG_LOAD, &load));
  if (!prog.ok()) {
    int err = errno;
    // Ask again with the verifier's log, which says which instruction it refused.
    log[0] = 0;
    load.log_level = 1;
    load.log_buf = reinterpret_cast<uint64_t>(log);
    load.log_size = sizeof(log);
    Fd again(Bpf(BPF_PROG_LOAD, &load));  // should this one load after all, it is not kept either
    std::string why = log[0] ? std::string(" (verifier: ") + log + ")" : "";
    return ThrowErrno(env, "bpf(BPF_PROG_LOAD)" + why, err);
  }

  uint32_t old_ids[64];
  union bpf_attr query;
  memset(&query, 0, sizeof(query));
  query.query.target_fd = static_cast<uint32_t>(cg.get());
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
  attach.target_fd = static_cast<uint32_t>(cg.get());
  attach.attach_bpf_fd = static_cast<uint32_t>(prog.get());
  attach.attach_type = BPF_CGROUP_DEVICE;
  // A single program attached without BPF_F_ALLOW_MULTI is replaced by attaching without it.
  bool single = nold == 1 && !(old_flags & BPF_F_ALLOW_MULTI);
  attach.attach_flags = single ? 0 : BPF_F_ALLOW_MULTI;
  if (Bpf(BPF_PROG_ATTACH, &attach) < 0) {
    return ThrowErrno(env, "bpf(BPF_PROG_ATTACH) " + dir, errno);
  }
  uint32_t replaced = single ? 1 : 0;
  for (uint32_t i = 0; !single && i < nold && i < 64; i++) {
    union bpf_attr byid;
    memset(&byid, 0, sizeof(byid));
    byid.prog_id = old_ids[i];
    Fd ofd(Bpf(BPF_PROG_GET_FD_BY_ID, &byid));
    if (!ofd.ok()) continue;
    union bpf_attr detach;
    memset(&detach, 0, sizeof(detach));
    detach.target_fd = static_cast<uint32_t>(cg.get());
    detach.attach_bpf_fd = static_cast<uint32_t>(ofd.get());
    detach.attach_type = BPF_CGROUP_DEVICE;
    if (Bpf(BPF_PROG_DETACH, &detach) == 0) replaced++;
  }
  return Napi::Number::New(env, replaced);
}

}  // namespace tsrt
