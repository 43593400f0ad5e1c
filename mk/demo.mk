# ---- the demo: a dice-game node (taskmon-demo), its report, and `make demo` ----
# Linked with the shared library like the integration workloads, so that the
# collector finds libtaskmon.so in its mappings and attaches its probes.
DEMO        := $(BUILD)/taskmon-demo
DEMO_REPORT := $(BUILD)/taskmon-demo-report
DEMO_SRCS   := tools/demo/demo.c tools/demo/demo_options.c tools/demo/demo_kinds.c \
               tools/demo/demo_work.c tools/demo/demo_summary.c
DEMO_OBJS   := $(DEMO_SRCS:%.c=$(BUILD)/%.o)

$(BUILD)/tools/demo/%.o: tools/demo/%.c
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(DEMO): $(DEMO_OBJS) $(BUILD)/libtaskmon.so
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(DEMO_OBJS) -L$(BUILD) -ltaskmon -Wl,-rpath,$(abspath $(BUILD)) $(LIBS) -lm

# The report asks the collector for a snapshot and reads its crash log.
$(DEMO_REPORT): $(BUILD)/tools/demo/demo_report.o
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< -ljansson

-include $(DEMO_OBJS:.o=.d) $(BUILD)/tools/demo/demo_report.d

tests-build: $(DEMO) $(DEMO_REPORT)
TEST_SCRIPTS += tests/demo_test.sh

# make demo [DEMO_ARGS="--crash"] [DEMO_SECONDS=20]: see tools/demo/run-demo.sh.
# `all` has taskmond, tasktop and taskmon. The recipe of demo-programs keeps
# make from saying that each up-to-date program is up to date.
.PHONY: demo-programs
demo-programs: all $(DEMO) $(DEMO_REPORT)
	@:

demo: deps
	@$(MAKE) --no-print-directory demo-programs
	@tools/demo/run-demo.sh $(BUILD) $(DEMO_ARGS)
