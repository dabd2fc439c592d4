// compileSeccomp(filter) -> Buffer: a seccomp descriptor built by src/plan/seccomp.ts, compiled with libseccomp
// into the classic BPF program the executor hands to seccomp(2). Runs in the runtime process, never in the
// cloned child: libseccomp allocates and probes the kernel, which the child must not do.
//
// The descriptor is already policy-free: numeric actions and operators, libseccomp architecture tokens, one
// rule per syscall name. What only libseccomp knows (which names and architectures it has) is checked here;
// an error carries `where`, the JSON pointer of the config field, so the caller can name it.
#include "addon.h"

#include <seccomp.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <linux/filter.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace {

struct FilterError {
  std::string where;
  std::string message;
};

class Context {
 public:
  explicit Context(uint32_t default_action) : ctx_(seccomp_init(default_action)) {}
  ~Context() {
    if (ctx_) seccomp_release(ctx_);
  }
  Context(const Context &) = delete;
  Context &operator=(const Context &) = delete;
  scmp_filter_ctx get() const { return ctx_; }

 private:
  scmp_filter_ctx ctx_;
};

uint32_t U32(const Napi::Object &o, const char *key) { return o.Get(key).As<Napi::Number>().Uint32Value(); }

std::string Str(const Napi::Object &o, const char *key) { return o.Get(key).As<Napi::String>().Utf8Value(); }

// u64 operands travel as decimal strings: a JS number cannot hold every u64.
bool Datum(const Napi::Object &o, const char *key, scmp_datum_t *out) {
  std::string s = Str(o, key);
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) return false;
  errno = 0;
  unsigned long long v = strtoull(s.c_str(), nullptr, 10);
  if (errno == ERANGE) return false;
  *out = static_cast<scmp_datum_t>(v);
  return true;
}

std::string Reason(int rc) { return strerror(-rc); }

// libseccomp 2.5 has no export to memory: export into a memfd and read the program back.
bool ExportProgram(scmp_filter_ctx ctx, std::vector<unsigned char> *out, std::string *why) {
  tsrt::Fd fd(static_cast<int>(syscall(SYS_memfd_create, "tsrt-seccomp", MFD_CLOEXEC)));
  if (!fd.ok()) {
    *why = std::string("memfd_create: ") + strerror(errno);
    return false;
  }
  int rc = seccomp_export_bpf(ctx, fd.get());
  if (rc < 0) {
    *why = "seccomp_export_bpf: " + Reason(rc);
    return false;
  }
  off_t len = lseek(fd.get(), 0, SEEK_END);
  if (len < 0 || lseek(fd.get(), 0, SEEK_SET) < 0) {
    *why = std::string("lseek: ") + strerror(errno);
    return false;
  }
  out->resize(static_cast<size_t>(len));
  size_t got = 0;
  while (got < out->size()) {
    ssize_t n = read(fd.get(), out->data() + got, out->size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *why = std::string("read exported program: ") + (n < 0 ? strerror(errno) : "short read");
      return false;
    }
    got += static_cast<size_t>(n);
  }
  return true;
}

// ---- runc's ENOSYS stub ----
//
// Prepended to libseccomp's program: per architecture, a syscall number above the highest one the profile
// names gets ENOSYS, not the default action. Such a syscall is newer than the profile, which could not have
// meant to forbid it; with ENOSYS the libc falls back to the older call (clone3 -> clone, openat2 -> openat),
// with the default EPERM it gives up. Every conditional jump is 0 or 1 instructions long (an 8-bit field),
// longer ones are `ja` (32 bits), so any number of architectures fits.

constexpr uint32_t kX32SyscallBit = 0x40000000;  // __X32_SYSCALL_BIT: an x32 call under AUDIT_ARCH_X86_64

struct Insn {
  uint16_t code;
  uint8_t jt;
  uint8_t jf;
  uint32_t k;
};
static_assert(sizeof(Insn) == sizeof(struct sock_filter), "an instruction as seccomp(2) reads it");

// The highest syscall number `names` have in one ABI of an audit architecture; 0 when none resolves.
struct Bound {
  uint32_t audit;
  bool x32;  // the x32 ABI of AUDIT_ARCH_X86_64 (numbers carry kX32SyscallBit)
  uint32_t max;
};

std::vector<Bound> Bounds(const std::vector<uint32_t> &arches, const std::vector<std::string> &names) {
  std::vector<Bound> out;
  for (uint32_t arch : arches) {
    Bound b = {arch == SCMP_ARCH_X32 ? static_cast<uint32_t>(SCMP_ARCH_X86_64) : arch, arch == SCMP_ARCH_X32, 0};
    bool dup = false;
    for (const Bound &o : out) dup = dup || (o.audit == b.audit && o.x32 == b.x32);
    if (dup) continue;
    for (const std::string &name : names) {
      // Negative: a pseudo number for a syscall this architecture lacks, or a name libseccomp does not know.
      int nr = seccomp_syscall_resolve_name_arch(arch, name.c_str());
      if (nr >= 0 && static_cast<uint32_t>(nr) > b.max) b.max = static_cast<uint32_t>(nr);
    }
    if (b.max) out.push_back(b);
  }
  return out;
}

std::vector<Insn> EnosysStub(const std::vector<Bound> &bounds) {
  const uint16_t ld = BPF_LD | BPF_W | BPF_ABS, ja = BPF_JMP | BPF_JA, jeq = BPF_JMP | BPF_JEQ | BPF_K;
  const uint16_t jgt = BPF_JMP | BPF_JGT | BPF_K, jset = BPF_JMP | BPF_JSET | BPF_K, ret = BPF_RET | BPF_K;
  const uint32_t enosys = SCMP_ACT_ERRNO(ENOSYS);
  std::vector<uint32_t> audits;
  for (const Bound &b : bounds)
    if (std::find(audits.begin(), audits.end(), b.audit) == audits.end()) audits.push_back(b.audit);
  std::vector<Insn> p;
  // Jumps to a section or to the filter are patched once their targets are known.
  std::vector<std::pair<size_t, uint32_t>> toSection;  // (ja index, audit)
  std::vector<size_t> toFilter;
  p.push_back({ld, 0, 0, 4});  // seccomp_data.arch
  for (uint32_t audit : audits) {
    p.push_back({jeq, 0, 1, audit});
    toSection.push_back({p.size(), audit});
    p.push_back({ja, 0, 0, 0});
  }
  toFilter.push_back(p.size());
  p.push_back({ja, 0, 0, 0});  // an architecture without a bound: straight to the filter
  // One ABI's bound: above it, ENOSYS; otherwise on to the filter.
  auto check = [&](uint32_t max) {
    p.push_back({jgt, 0, 1, max});
    p.push_back({ret, 0, 0, enosys});
    toFilter.push_back(p.size());
    p.push_back({ja, 0, 0, 0});
  };
  // An ABI without a bound goes straight to the filter.
  auto checkOrFilter = [&](const Bound *b) {
    if (b) {
      check(b->max);
    } else {
      toFilter.push_back(p.size());
      p.push_back({ja, 0, 0, 0});
    }
  };
  for (uint32_t audit : audits) {
    size_t start = p.size();
    for (auto &j : toSection)
      if (j.second == audit) p[j.first].k = static_cast<uint32_t>(start - j.first - 1);
    const Bound *native = nullptr, *x32 = nullptr;
    for (const Bound &b : bounds)
      if (b.audit == audit) (b.x32 ? x32 : native) = &b;
    p.push_back({ld, 0, 0, 0});  // seccomp_data.nr
    if (audit == SCMP_ARCH_S390 || audit == SCMP_ARCH_S390X) {
      // s390 multiplexes syscalls it does not know through number 0 (the long-gone setup(2)).
      p.push_back({jeq, 0, 1, 0});
      p.push_back({ret, 0, 0, enosys});
    }
    if (audit != SCMP_ARCH_X86_64) {
      checkOrFilter(native);
      continue;
    }
    // AUDIT_ARCH_X86_64 carries two ABIs: x32 numbers have kX32SyscallBit set, and each ABI has its own bound.
    p.push_back({jset, 0, 1, kX32SyscallBit});
    size_t toX32 = p.size();
    p.push_back({ja, 0, 0, 0});
    checkOrFilter(native);
    p[toX32].k = static_cast<uint32_t>(p.size() - toX32 - 1);
    checkOrFilter(x32);
  }
  for (size_t j : toFilter) p[j].k = static_cast<uint32_t>(p.size() - j - 1);
  return p;
}

bool Compile(const Napi::Object &filter, std::vector<unsigned char> *program, FilterError *err) {
  Context ctx(U32(filter, "defaultAction"));
  if (!ctx.get()) {
    *err = {"/linux/seccomp/defaultAction", "libseccomp refused the default action"};
    return false;
  }

  // The native architecture is in every new context; the listed ones are added beside it.
  Napi::Array arches = filter.Get("architectures").As<Napi::Array>();
  std::vector<uint32_t> archValues = {seccomp_arch_native()};
  for (uint32_t i = 0; i < arches.Length(); i++) {
    Napi::Object a = arches.Get(i).As<Napi::Object>();
    std::string token = Str(a, "token");
    uint32_t arch = seccomp_arch_resolve_name(token.c_str());
    if (arch == 0) {
      const struct scmp_version *v = seccomp_version();
      *err = {Str(a, "where"), "architecture \"" + token + "\" is not supported by libseccomp " +
                                   std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
                                   std::to_string(v->micro)};
      return false;
    }
    int rc = seccomp_arch_add(ctx.get(), arch);
    if (rc == -EDOM) {
      *err = {Str(a, "where"), "architecture \"" + token + "\" cannot share a filter with the native one (byte order)"};
      return false;
    }
    if (rc < 0 && rc != -EEXIST) {
      *err = {Str(a, "where"), "add architecture \"" + token + "\": " + Reason(rc)};
      return false;
    }
    archValues.push_back(arch);
  }

  Napi::Array rules = filter.Get("rules").As<Napi::Array>();
  for (uint32_t i = 0; i < rules.Length(); i++) {
    Napi::Object r = rules.Get(i).As<Napi::Object>();
    std::string name = Str(r, "syscall");
    std::string where = Str(r, "where");
    // As runc: a name this libseccomp does not know is a syscall this kernel generation lacks; skip it.
    int nr = seccomp_syscall_resolve_name(name.c_str());
    if (nr == __NR_SCMP_ERROR) continue;
    Napi::Array args = r.Get("args").As<Napi::Array>();
    std::vector<struct scmp_arg_cmp> cmps(args.Length());
    for (uint32_t j = 0; j < args.Length(); j++) {
      Napi::Object a = args.Get(j).As<Napi::Object>();
      cmps[j].arg = U32(a, "index");
      cmps[j].op = static_cast<enum scmp_compare>(U32(a, "op"));
      if (!Datum(a, "value", &cmps[j].datum_a) || !Datum(a, "valueTwo", &cmps[j].datum_b)) {
        *err = {where + "/args/" + std::to_string(j), "operand is not an unsigned 64-bit number"};
        return false;
      }
    }
    int rc = seccomp_rule_add_array(ctx.get(), U32(r, "action"), nr, static_cast<unsigned int>(cmps.size()),
                                    cmps.empty() ? nullptr : cmps.data());
    if (rc < 0) {
      *err = {where, "add rule for \"" + name + "\": " + Reason(rc)};
      return false;
    }
  }

  std::string why;
  if (!ExportProgram(ctx.get(), program, &why)) {
    *err = {"/linux/seccomp", why};
    return false;
  }
  if (filter.Has("enosysNames")) {
    Napi::Array list = filter.Get("enosysNames").As<Napi::Array>();
    std::vector<std::string> names;
    for (uint32_t i = 0; i < list.Length(); i++) names.push_back(list.Get(i).As<Napi::String>().Utf8Value());
    std::vector<Bound> bounds = Bounds(archValues, names);
    if (!bounds.empty()) {
      std::vector<Insn> stub = EnosysStub(bounds);
      const unsigned char *bytes = reinterpret_cast<const unsigned char *>(stub.data());
      program->insert(program->begin(), bytes, bytes + stub.size() * sizeof(Insn));
    }
  }
  return true;
}

}  // namespace

Napi::Value CompileSeccomp(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::vector<unsigned char> program;
  FilterError err;
  if (!Compile(info[0].As<Napi::Object>(), &program, &err)) {
    Napi::Error e = Napi::Error::New(env, err.message);
    e.Set("code", Napi::String::New(env, "ESECCOMP"));
    e.Set("where", Napi::String::New(env, err.where));
    e.ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Buffer<unsigned char>::Copy(env, program.data(), program.size());
}

// seccompInfo() -> { version, supportedFlags }: what `features` reports. A flag is supported when seccomp(2)
// gets past flag validation to the (deliberately NULL) program and fails with EFAULT; an unknown flag gives
// EINVAL first. Nothing is ever installed.
Napi::Value SeccompInfo(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  const struct scmp_version *v = seccomp_version();
  Napi::Object out = Napi::Object::New(env);
  out.Set("version", std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->micro));
  static const unsigned int kFlags[] = {1u << 0, 1u << 1, 1u << 2, 1u << 3, 1u << 4, 1u << 5};
  constexpr unsigned int kNewListener = 1u << 3, kWaitKillableRecv = 1u << 5;
  uint32_t supported = 0;
  for (unsigned int flag : kFlags) {
    // The kernel accepts WAIT_KILLABLE_RECV only together with NEW_LISTENER.
    unsigned int probe = flag == kWaitKillableRecv ? flag | kNewListener : flag;
    if (syscall(SYS_seccomp, 1 /* SECCOMP_SET_MODE_FILTER */, probe, nullptr) < 0 && errno == EFAULT) supported |= flag;
  }
  out.Set("supportedFlags", supported);
  return out;
}
