// N-API surface of tsrt: mechanism only. Every function is synchronous and libuv-free, so the same addon
// loads in Node and in the Bun-compiled single executable. Policy (what to mount, which ids, which caps)
// lives in TypeScript; these files move bytes and fds and call the kernel. addon.h says which file holds what.
#include "addon.h"

#include <cstring>

namespace tsrt {

std::string ErrnoName(int err) {
  const char *name = strerrorname_np(err);
  return name ? name : "E" + std::to_string(err);
}

Napi::Value ThrowErrno(Napi::Env env, const std::string &what, int err, const char *syscall) {
  Napi::Error e = Napi::Error::New(env, what + ": " + strerror(err));
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  e.Set("errno", Napi::Number::New(env, err));
  if (syscall) e.Set("syscall", Napi::String::New(env, syscall));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

}  // namespace tsrt

namespace {

using namespace tsrt;

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
  exports.Set("mountDevice", Napi::Function::New(env, MountDevice));
  exports.Set("unmountNow", Napi::Function::New(env, UnmountNow));
  exports.Set("loopAttach", Napi::Function::New(env, LoopAttach));
  exports.Set("attachDeviceFilter", Napi::Function::New(env, AttachDeviceFilter));
  return exports;
}

}  // namespace

NODE_API_MODULE(tsrt, Init)
