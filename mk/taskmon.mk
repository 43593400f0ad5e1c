# `taskmon` (tools/taskmon/): the command over record directories, `dump` and
# `plan`; tools/common/: the record-directory reader it shares with tasktop.
# Tests: the collector's record writer, the reader, and the dump command
# (formats, arguments, and an end-to-end run of taskmond --record as root).
TASKMON      := $(BUILD)/taskmon
TASKMON_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tools/taskmon/*.c) $(wildcard tools/common/*.c))

all: $(TASKMON)
tests-build: $(TASKMON) $(BUILD)/tests/test_record $(BUILD)/tests/test_records

$(BUILD)/tools/taskmon/%.o: tools/taskmon/%.c
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -Itools/common -Itools/taskmon -c $< -o $@

$(BUILD)/tools/common/%.o: tools/common/%.c
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -Itools/common -c $< -o $@

# libtaskmon.a: the planner reads [task_limits] with the library's own parser.
$(TASKMON): $(TASKMON_OBJS) $(BUILD)/libtaskmon.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(TASKMON_OBJS) $(BUILD)/libtaskmon.a -ljansson -lm $(LIBS)

# The writer's test builds a merge and records it: the collector's objects,
# as the privileged tests link them, but no privilege is needed.
$(BUILD)/tests/test_record.o: ALL_CFLAGS += -Iuser -Ibpf
$(BUILD)/tests/test_record.o: $(BUILD)/bpf/taskmon.skel.h
$(BUILD)/tests/test_record: $(BUILD)/tests/test_record.o $(TMD_OBJS) $(BUILD)/libtaskmon.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(TMD_OBJS) $(BUILD)/libtaskmon.a -lcmocka $(BPF_LIBS) $(LIBS)

$(BUILD)/tests/test_records.o: ALL_CFLAGS += -Itools/common
$(BUILD)/tests/test_records: $(BUILD)/tests/test_records.o $(BUILD)/tools/common/records.o
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ -lcmocka -ljansson $(LIBS)

TEST_SCRIPTS += tests/taskmon_dump_test.sh

-include $(TASKMON_OBJS:.o=.d)
