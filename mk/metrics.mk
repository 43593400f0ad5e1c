# Prometheus exposition (user/metrics*.c, part of taskmond), its tests, and
# the fleet kit's checks (tools/fleet/).
BPF_LIBS += -lmicrohttpd   # user/metrics_http.c; taskmond, the privileged tests and the bench embed it

# The rendering test builds a merge and renders it: it links the collector's
# objects like the privileged tests do, but needs no privilege.
$(BUILD)/tests/test_metrics.o: ALL_CFLAGS += -Iuser -Ibpf
$(BUILD)/tests/test_metrics.o: $(BUILD)/bpf/taskmon.skel.h
$(BUILD)/tests/test_metrics: $(BUILD)/tests/test_metrics.o $(TMD_OBJS) $(BUILD)/libtaskmon.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(TMD_OBJS) $(BUILD)/libtaskmon.a -lcmocka $(BPF_LIBS) $(LIBS)

# Alert rules and dashboard: promtool check/test rules, JSON parses.
TEST_SCRIPTS += tests/fleet_test.sh
# A real Prometheus scraping taskmond while the test workload runs (root).
TEST_SCRIPTS += tests/prometheus_test.sh
