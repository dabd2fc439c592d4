# The compiler flags every native build shares: the executor's and the helper's Makefiles include this file,
# binding.gyp asks it (`make -s -f native/hardening.mk cflags`), and hack/check-native.sh builds with it under
# gcc and clang alike. Warnings are errors (issue 13: the native core parses bytes an attacker chose).
# _FORTIFY_SOURCE is undefined first: some compilers predefine a level, and a redefinition is a warning.
HARDEN_WARN = -Wall -Wextra -Werror -Wformat -Wformat-security
HARDEN_CODEGEN = -fstack-clash-protection -fcf-protection
HARDEN_CFLAGS = $(HARDEN_WARN) -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=3 -fstack-protector-strong $(HARDEN_CODEGEN)
HARDEN_LDFLAGS = -Wl,-z,relro,-z,now

# TSRT_SANITIZE=1 (npm run build:sanitize): the test-only variant. The executor gets ASan+UBSan, which need
# their runtime libraries, so it is linked dynamically (loaded in the host's mount namespace right after the
# clone, before any pivot_root) with every symbol bound at load (-z,now); _FORTIFY_SOURCE's checks would
# hide the accesses ASan reports. The helper and the addon get UBSan in trap mode: the helper has no libc to
# print a report with, and ASan in the addon would need libasan preloaded into the JS runtime. Nothing
# recovers: any finding ends the process (SIGABRT or SIGILL), so a run with one fails.
SANITIZE_EXECUTOR = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all \
	-DTSRT_SANITIZE
SANITIZE_TRAP = -fsanitize=undefined -fsanitize-undefined-trap-on-error -fno-sanitize-recover=all

cflags:
	@echo $(HARDEN_CFLAGS)
ldflags:
	@echo $(HARDEN_LDFLAGS)
warn:
	@echo $(HARDEN_WARN)
codegen:
	@echo $(HARDEN_CODEGEN)
# binding.gyp asks this one too: empty unless TSRT_SANITIZE=1 is in the environment.
sanitize-addon:
	@echo $(if $(filter 1,$(TSRT_SANITIZE)),$(SANITIZE_TRAP) -DTSRT_SANITIZE)
.PHONY: cflags ldflags warn codegen sanitize-addon
