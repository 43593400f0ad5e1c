# Reliability tests: fault injection into the library, hostile workloads and
# clients against the collector, resource exhaustion; and `make soak`.

# Every allocation, mapping, segment and thread the library asks for can be
# refused on demand: its calls go through the test's wrappers.
FAULT_WRAPS := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free,--wrap=pthread_create \
               -Wl,--wrap=mmap,--wrap=shm_open,--wrap=ftruncate
$(BUILD)/tests/test_faults: $(BUILD)/tests/test_faults.o $(BUILD)/libtaskmon.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) $(FAULT_WRAPS) -o $@ $< $(BUILD)/libtaskmon.a -lcmocka $(LIBS)

# A long run of the demo under the collector, recording, with tasktop (not in CI).
SOAK_SECONDS ?= 600
.PHONY: soak
soak: all
	@$(MAKE) --no-print-directory $(BUILD)/taskmon-demo $(BUILD)/tasktop
	@SOAK_SECONDS=$(SOAK_SECONDS) tools/soak.sh $(BUILD)
