# Fuzzing (tests/fuzz/): every parser of hostile input has a libFuzzer target
# tests/fuzz/fuzz_<name>.c, a seed corpus tests/fuzz/corpus/<name>/ and
# optionally a dictionary tests/fuzz/<name>.dict.
#   make fuzz [FUZZ_SECONDS=60] [FUZZ_TARGETS="wire config"]
#       clang -fsanitize=fuzzer,address,undefined builds into build/fuzz/,
#       each target runs FUZZ_SECONDS; executions per second and coverage are
#       printed per target, crashes land in build/fuzz/artifacts/.
#   make test
#       replays every corpus (crashes found earlier stay in it as regression
#       inputs) with the build's own compiler and sanitizers.

FUZZ_SECONDS ?= 60
FUZZ_ALL     := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_OUT     := build/fuzz
FUZZ_OBJ     := $(FUZZ_OUT)/obj
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_LIBS     = -ljansson $(BPF_LIBS) $(LIBS)
FUZZ_INC      = -Ilib -Iuser -Ibpf -Itests/fuzz

# Parsers other parts provide: the sources a target needs besides the
# library and the collector's objects.
FUZZ_EXTRA_records  := tools/common/records.c
FUZZ_EXTRA_snapshot := tools/tasktop/snapshot_parse.c tools/tasktop/json_scan.c tools/tasktop/model.c \
                       tools/tasktop/warnings.c

# ---- replays, part of make test ------------------------------------------------
FUZZ_REPLAYS := $(FUZZ_ALL:%=$(BUILD)/tests/fuzz/replay_%)
tests-build: $(FUZZ_REPLAYS)
TEST_SCRIPTS += tests/fuzz_replay.sh

$(BUILD)/tests/fuzz/%.o: tests/fuzz/%.c $(BUILD)/bpf/taskmon.skel.h
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) $(FUZZ_INC) -I$(BUILD)/bpf -Itools/common -Itools/tasktop -c $< -o $@

$(BUILD)/tests/fuzz/replay_%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/replay.o $(TMD_OBJS) $(BUILD)/libtaskmon.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/tests/fuzz/replay.o $(filter $(BUILD)/tools/%,$^) $(TMD_OBJS) \
		$(BUILD)/libtaskmon.a $(FUZZ_LIBS) -lm
$(BUILD)/tests/fuzz/replay_records: $(FUZZ_EXTRA_records:%.c=$(BUILD)/%.o)
$(BUILD)/tests/fuzz/replay_snapshot: $(FUZZ_EXTRA_snapshot:%.c=$(BUILD)/%.o)

-include $(FUZZ_REPLAYS:%=%.d) $(FUZZ_ALL:%=$(BUILD)/tests/fuzz/fuzz_%.d)

# ---- libFuzzer builds, make fuzz -------------------------------------------------
# The library and collector objects are built by this Makefile's own rules,
# run again with clang, coverage instrumentation and the sanitizers into
# build/fuzz/obj/ (section renaming of the library included).
FUZZ_TMD_OBJS = $(patsubst $(BUILD)/%,$(FUZZ_OBJ)/%,$(TMD_OBJS))

.PHONY: fuzz fuzz-build fuzz-objs
fuzz-objs:
	@$(MAKE) --no-print-directory CC=clang BUILD=$(FUZZ_OBJ) SANITIZE= \
		SANFLAGS="-fsanitize=fuzzer-no-link $(FUZZ_SAN)" $(FUZZ_OBJ)/libtaskmon.a $(FUZZ_TMD_OBJS)

$(FUZZ_OUT)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h fuzz-objs
	$(call msg,FUZZ,$@)
	@mkdir -p $(@D)
	$(Q)clang -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer $(FUZZ_SAN) \
		$(FUZZ_INC) -I$(FUZZ_OBJ)/bpf -Itools/common -Itools/tasktop -o $@ $< $(FUZZ_EXTRA_$*) \
		$(FUZZ_TMD_OBJS) $(FUZZ_OBJ)/libtaskmon.a $(FUZZ_LIBS) -lm

fuzz-build: $(FUZZ_TARGETS:%=$(FUZZ_OUT)/fuzz_%)

fuzz: deps
	@$(MAKE) --no-print-directory fuzz-build
	@tests/fuzz/run.sh $(FUZZ_OUT) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# Kept: a replay relinks without recompiling every target.
.SECONDARY: $(FUZZ_ALL:%=$(BUILD)/tests/fuzz/fuzz_%.o) $(BUILD)/tests/fuzz/replay.o
