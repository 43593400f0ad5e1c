# Crashes and restarts: kill -9 of the collector and of a workload
# (tests/test_bpf_kill.c, built by the test_bpf_% rule), and a workload that
# crashes while tasktop is open, under tmux.
tests-build: $(BUILD)/tasktop $(BUILD)/taskmond $(BUILD)/tests/integration/crasher $(BUILD)/tests/integration/workload
TEST_SCRIPTS += tests/crash_view_test.sh
