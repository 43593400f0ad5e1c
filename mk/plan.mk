# `taskmon plan`: the capacity-planning report's tests, and the workload that
# grows its concurrency in steps. The planner's objects (tools/taskmon/plan.c,
# fit.c, svg.c) are compiled and linked into taskmon by mk/taskmon.mk.

# The fit is pure arithmetic: its test needs nothing else.
$(BUILD)/tests/test_fit: $(BUILD)/tests/test_fit.o $(BUILD)/tools/taskmon/fit.o
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ -lcmocka -lm

# Holds N sleeping tasks and steps N up; linked with the shared library like
# the collector's other test workloads, so that taskmond finds it.
GROWER := $(BUILD)/tests/integration/grower
tests-build: $(GROWER)
$(GROWER): tests/integration/grower.c $(BUILD)/libtaskmon.so
	$(call msg,LD,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< -L$(BUILD) -ltaskmon -Wl,-rpath,$(abspath $(BUILD)) $(LIBS)

TEST_SCRIPTS += tests/plan_test.sh

-include $(GROWER).d
