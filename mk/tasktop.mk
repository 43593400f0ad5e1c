# ---- tasktop: the terminal view (tools/tasktop/) ---------------------------------
# The screens, view, canvas and terminal are listed here; the data side (model,
# sources, snapshot parsing, warnings) is $(TASKTOP_DATA_SRCS) from
# mk/tasktop_data.mk, which is included after this file: its objects are named
# in prerequisites through secondary expansion ($$), when every fragment is read.
TASKTOP      := $(BUILD)/tasktop
TT_UI_SRCS   := tools/tasktop/canvas.c tools/tasktop/view.c $(wildcard tools/tasktop/screen_*.c)
TT_UI_OBJS   := $(TT_UI_SRCS:%.c=$(BUILD)/%.o)
TT_MAIN_OBJS := $(BUILD)/tools/tasktop/main.o $(BUILD)/tools/tasktop/term.o
TT_DATA_OBJS  = $(patsubst %.c,$(BUILD)/%.o,$(TASKTOP_DATA_SRCS) $(wildcard tools/common/*.c))
TT_LIBS      := -ljansson -lm $(LIBS)
TT_CURSES    := $(shell pkg-config --libs ncursesw 2>/dev/null || echo -lncursesw)

all: $(TASKTOP)
tests-build: $(TASKTOP)

$(BUILD)/tools/tasktop/%.o: tools/tasktop/%.c
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -Itools/tasktop -Itools/common -c $< -o $@

$(BUILD)/tools/common/%.o: tools/common/%.c
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -Itools/common -c $< -o $@

.SECONDEXPANSION:
$(TASKTOP): $(TT_MAIN_OBJS) $(TT_UI_OBJS) $$(TT_DATA_OBJS) $(BUILD)/libtaskmon.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(TT_MAIN_OBJS) $(TT_UI_OBJS) $(TT_DATA_OBJS) $(BUILD)/libtaskmon.a \
		$(TT_CURSES) $(TT_LIBS)

# The screen and key tests link everything but main and the terminal.
$(BUILD)/tests/test_tasktop_%.o: ALL_CFLAGS += -Itools/tasktop -Itools/common
$(BUILD)/tests/test_tasktop_%: $(BUILD)/tests/test_tasktop_%.o $(TT_UI_OBJS) $$(TT_DATA_OBJS) $(BUILD)/libtaskmon.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(TT_UI_OBJS) $(TT_DATA_OBJS) $(BUILD)/libtaskmon.a -lcmocka $(TT_LIBS)

# End to end under tmux, and batch mode against the collector's snapshot.
TEST_SCRIPTS += tests/tasktop_tmux_test.sh

-include $(TT_UI_OBJS:.o=.d) $(TT_MAIN_OBJS:.o=.d)
