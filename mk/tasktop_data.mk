# ---- tasktop, data side (tools/tasktop/): model, sources, snapshot parsing,
# warnings. Never curses: mk/tasktop.mk links these into the tool and into the
# test_tasktop_* binaries (test_tasktop_model, test_tasktop_sources use only
# these, the library, jansson and cmocka).
TASKTOP_DATA_SRCS := tools/tasktop/model.c tools/tasktop/json_scan.c tools/tasktop/snapshot_parse.c \
                     tools/tasktop/warnings.c tools/tasktop/proc_sample.c tools/tasktop/crashes.c \
                     tools/tasktop/source.c tools/tasktop/source_socket.c tools/tasktop/source_shm.c \
                     tools/tasktop/source_replay.c

# test_tasktop_sources runs the collector's test workload and, as root, taskmond.
tests-build: $(BUILD)/tests/integration/workload $(BUILD)/taskmond

-include $(TASKTOP_DATA_SRCS:%.c=$(BUILD)/%.d)
