# The compiler flags every native build shares: the executor's and the helper's Makefiles include this file,
# binding.gyp asks it (`make -s -f native/hardening.mk cflags`), and hack/check-native.sh builds with it under
# gcc and clang alike. Warnings are errors (issue 13: the native core parses bytes an attacker chose).
# _FORTIFY_SOURCE is undefined first: some compilers predefine a level, and a redefinition is a warning.
HARDEN_WARN = -Wall -Wextra -Werror -Wformat -Wformat-security
HARDEN_CODEGEN = -fstack-clash-protection -fcf-protection
HARDEN_CFLAGS = $(HARDEN_WARN) -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=3 -fstack-protector-strong $(HARDEN_CODEGEN)
HARDEN_LDFLAGS = -Wl,-z,relro,-z,now

cflags:
	@echo $(HARDEN_CFLAGS)
ldflags:
	@echo $(HARDEN_LDFLAGS)
warn:
	@echo $(HARDEN_WARN)
codegen:
	@echo $(HARDEN_CODEGEN)
.PHONY: cflags ldflags warn codegen
