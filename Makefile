# taskmon build. Out of tree into build/ (build/san-<kind>/ with SANITIZE=).
#   make            library, pkg-config file
#   make test       install missing packages, build, run every test
#   make bench      benchmarks, figures into build/bench/
#   make install    PREFIX=/usr/local DESTDIR=
# V=1 shows full commands.

.DELETE_ON_ERROR:
.SUFFIXES:

# The one list of Debian packages the project needs (build, tests, benchmarks).
DEB_PACKAGES := gcc make pkg-config clang libcmocka-dev libinih-dev systemtap-sdt-dev \
                libglib2.0-dev procps \
                libbpf-dev bpftool libelf-dev zlib1g-dev llvm libjansson-dev \
                libmicrohttpd-dev libncurses-dev prometheus tmux libclang-rt-14-dev linux-perf python3 \
                librsvg2-bin libxml2-utils libbpf-tools

PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include
PCDIR   ?= $(LIBDIR)/pkgconfig
VERSION := 0.1.0
SOVER   := 0

SANITIZE ?=
ifeq ($(SANITIZE),)
BUILD := build
SANFLAGS :=
else ifeq ($(SANITIZE),address)
BUILD := build/san-address
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined
else ifeq ($(SANITIZE),thread)
BUILD := build/san-thread
SANFLAGS := -fsanitize=thread
else
$(error SANITIZE must be address or thread, not '$(SANITIZE)')
endif

CC      ?= cc
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes
CFLAGS  ?= -O2 -g
CFLAGS  += -fno-omit-frame-pointer
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(SANFLAGS) -MMD -MP -Ilib
LDFLAGS += $(SANFLAGS)
LIBS    := -pthread -linih

ifeq ($(V),1)
Q :=
msg = @true
else
Q := @
msg = @printf '  %-7s %s\n' $(1) $(2)
endif

LIB_SRCS := $(wildcard lib/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
TEST_SRCS := $(wildcard tests/test_*.c)
TESTS    := $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)
BENCH_SRCS := $(wildcard tests/bench/*.c)
BENCHES  := $(BENCH_SRCS:tests/bench/%.c=$(BUILD)/bench/%)

.PHONY: all deps test bench install uninstall clean demo
all: $(BUILD)/libtaskmon.so $(BUILD)/libtaskmon.a $(BUILD)/taskmon.pc

deps:
	@tools/install-deps.sh $(DEB_PACKAGES)

# All library code goes into one section, taskmon_text, whose bounds the
# linker gives lib/contain.c as __start_/__stop_taskmon_text wherever the
# library is linked: a fault inside them is never taken for a task's. Every
# code section is renamed, not only .text: gcc's .text.unlikely/.hot/.startup,
# clang's .text.unlikely./.hot. and the sanitizers' constructors are code too.
# Objects depend on the Makefile so that none built without this stays.
OBJCOPY ?= objcopy
OBJDUMP ?= objdump
$(BUILD)/lib/%.o: lib/%.c Makefile
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -fPIC -fvisibility=hidden -c $< -o $@
	$(Q)$(OBJCOPY) $$($(OBJDUMP) -h $@ | awk '/^ *[0-9]+ /{n=$$2} /CODE/ && !s[n]++ && n != "taskmon_text" \
		{printf " --rename-section %s=taskmon_text", n}') $@

$(BUILD)/libtaskmon.so.$(VERSION): $(LIB_OBJS) lib/libtaskmon.map
	$(call msg,LD,$@)
	$(Q)$(CC) -shared -Wl,-soname,libtaskmon.so.$(SOVER) -Wl,--version-script=lib/libtaskmon.map $(LDFLAGS) \
		-o $@ $(LIB_OBJS) $(LIBS)

$(BUILD)/libtaskmon.so: $(BUILD)/libtaskmon.so.$(VERSION)
	$(Q)ln -sf libtaskmon.so.$(VERSION) $(BUILD)/libtaskmon.so.$(SOVER)
	$(Q)ln -sf libtaskmon.so.$(VERSION) $@

$(BUILD)/libtaskmon.a: $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/taskmon.pc: tools/taskmon.pc.in Makefile
	$(call msg,GEN,$@)
	@mkdir -p $(@D)
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCDIR@|$(INCDIR)|; s|@VERSION@|$(VERSION)|' $< > $@

# Tests and benchmarks link the static library: one binary per module, no
# LD_LIBRARY_PATH, and sanitizers cover the library code too.
$(BUILD)/tests/%.o: tests/%.c
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -Itests -c $< -o $@

$(BUILD)/tests/test_%: $(BUILD)/tests/test_%.o $(BUILD)/libtaskmon.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/libtaskmon.a -lcmocka $(LIBS)

$(BUILD)/bench/%.o: tests/bench/%.c
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) $(shell pkg-config --cflags glib-2.0 2>/dev/null) -c $< -o $@

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BUILD)/libtaskmon.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/libtaskmon.a $(LIBS) $(shell pkg-config --libs glib-2.0 2>/dev/null) -lm

# The install check builds the README example against the installed library,
# and the README check runs the programs' --help: both only make sense for
# the plain (unsanitized) build.
TEST_SCRIPTS := $(if $(SANITIZE),,tests/install_test.sh tests/readme_test.sh)

test: deps
	@$(MAKE) --no-print-directory all tests-build
	@tools/run-tests.sh $(TESTS) $(TEST_SCRIPTS:%=%@$(BUILD))

.PHONY: tests-build
tests-build: $(TESTS)

bench: deps
	@$(MAKE) --no-print-directory $(BENCHES)
	@mkdir -p build/bench
	@for b in $(BENCHES); do $$b build/bench || exit 1; done

install: all
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR) $(DESTDIR)$(PCDIR)
	install -m 644 lib/taskmon.h lib/taskmon_shm.h $(DESTDIR)$(INCDIR)/
	install -m 755 $(BUILD)/libtaskmon.so.$(VERSION) $(DESTDIR)$(LIBDIR)/
	ln -sf libtaskmon.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libtaskmon.so.$(SOVER)
	ln -sf libtaskmon.so.$(SOVER) $(DESTDIR)$(LIBDIR)/libtaskmon.so
	install -m 644 $(BUILD)/libtaskmon.a $(DESTDIR)$(LIBDIR)/
	install -m 644 $(BUILD)/taskmon.pc $(DESTDIR)$(PCDIR)/

uninstall:
	rm -f $(DESTDIR)$(INCDIR)/taskmon.h $(DESTDIR)$(INCDIR)/taskmon_shm.h \
	      $(DESTDIR)$(LIBDIR)/libtaskmon.so* $(DESTDIR)$(LIBDIR)/libtaskmon.a $(DESTDIR)$(PCDIR)/taskmon.pc

clean:
	rm -rf build

-include $(LIB_OBJS:.o=.d) $(TESTS:%=%.d) $(BENCHES:%=%.d)

# ---- kernel programs (bpf/) and taskmond (user/) ---------------------------------
# CO-RE: the object is compiled against the committed bpf/vmlinux.h, never the
# build machine's kernel, and relocated at load time. The skeleton embeds it.
BPF_CLANG  ?= clang
BPFTOOL    ?= bpftool
LLVM_STRIP ?= llvm-strip
BPF_CFLAGS := -target bpf -g -O2 -Wall -D__TARGET_ARCH_x86 -I/usr/include/$(shell gcc -dumpmachine) -Ibpf
BPF_LIBS   := -lbpf -lelf -lz
BPF_LIBS   += -ljansson   # user/crashlog.c writes crash records as JSON
USER_SRCS  := $(wildcard user/*.c)
USER_OBJS  := $(USER_SRCS:%.c=$(BUILD)/%.o)
TMD_OBJS   := $(filter-out $(BUILD)/user/taskmond.o,$(USER_OBJS))   # the loader, for the tests too
CRASHER    := $(BUILD)/tests/integration/crasher

all: $(BUILD)/taskmond
tests-build: $(CRASHER) $(BUILD)/taskmond   # test_bpf_taskmond runs it

# Regenerates bpf/vmlinux.h (x86_64) from the running kernel's BTF.
.PHONY: vmlinux
vmlinux:
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > bpf/vmlinux.h.tmp
	mv bpf/vmlinux.h.tmp bpf/vmlinux.h

$(BUILD)/bpf/taskmon.bpf.o: bpf/taskmon.bpf.c
	$(call msg,BPF,$@)
	@mkdir -p $(@D)
	$(Q)$(BPF_CLANG) $(BPF_CFLAGS) -MMD -MP -c $< -o $@
	$(Q)$(LLVM_STRIP) -g $@

$(BUILD)/bpf/taskmon.skel.h: $(BUILD)/bpf/taskmon.bpf.o
	$(call msg,GEN,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name taskmon_bpf > $@

$(USER_OBJS): $(BUILD)/bpf/taskmon.skel.h
$(BUILD)/user/%.o: user/%.c
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -Iuser -Ibpf -I$(BUILD)/bpf -Itools/common -c $< -o $@

$(BUILD)/taskmond: $(USER_OBJS) $(BUILD)/libtaskmon.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(USER_OBJS) $(BUILD)/libtaskmon.a $(BPF_LIBS) $(LIBS)

# Privileged tests embed the loader.
$(BUILD)/tests/test_bpf_%.o: ALL_CFLAGS += -Iuser -Ibpf
$(BUILD)/tests/test_bpf_%: $(BUILD)/tests/test_bpf_%.o $(TMD_OBJS) $(BUILD)/libtaskmon.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(TMD_OBJS) $(BUILD)/libtaskmon.a -lcmocka $(BPF_LIBS) $(LIBS)

# A workload that crashes, linked with the shared library: the collector finds
# libtaskmon.so in its mappings.
$(CRASHER): tests/integration/crasher.c $(BUILD)/libtaskmon.so
	$(call msg,LD,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< -L$(BUILD) -ltaskmon -Wl,-rpath,$(abspath $(BUILD)) $(LIBS)

# A workload with a known mix of tasks, for the collector's tests (linked
# like the crasher, so that the collector finds libtaskmon.so).
WORKLOAD := $(BUILD)/tests/integration/workload
tests-build: $(WORKLOAD)
$(WORKLOAD): tests/integration/workload.c $(BUILD)/libtaskmon.so
	$(call msg,LD,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< -L$(BUILD) -ltaskmon -Wl,-rpath,$(abspath $(BUILD)) $(LIBS)

-include $(USER_OBJS:.o=.d) $(BUILD)/bpf/taskmon.bpf.d $(CRASHER).d $(WORKLOAD).d

# The collector benchmark embeds the loader, as the privileged tests do.
$(BUILD)/bench/bench_collector.o: ALL_CFLAGS += -Iuser -Ibpf
$(BUILD)/bench/bench_collector: $(BUILD)/bench/bench_collector.o $(TMD_OBJS) $(BUILD)/libtaskmon.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(TMD_OBJS) $(BUILD)/libtaskmon.a $(BPF_LIBS) $(LIBS) -lm

# Symbolizer and crash records: the unit test links them without the loader.
SYM_OBJS := $(BUILD)/user/symbolize.o $(BUILD)/user/crashlog.o $(BUILD)/user/discover.o
$(BUILD)/tests/test_symbolize.o: ALL_CFLAGS += -Iuser -Ibpf
$(BUILD)/tests/test_symbolize: $(BUILD)/tests/test_symbolize.o $(SYM_OBJS) $(BUILD)/libtaskmon.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(SYM_OBJS) $(BUILD)/libtaskmon.a -lcmocka -lelf -ljansson $(LIBS)

# Each further part (exports, terminal tool, demo, fuzzers) keeps its rules in
# its own fragment under mk/; they may add to TEST_SCRIPTS and tests-build.
include $(sort $(wildcard mk/*.mk))
