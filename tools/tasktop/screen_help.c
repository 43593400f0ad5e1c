/* The Help screen: keys, columns, warnings. */
#include "screen.h"

static const char *const help_lines[] = {
	"#Screens",
	"  1..6, F1..F6    Types, Tasks, Detail, Crashes, Warnings, Help",
	"  Tab, Shift-Tab  next, previous screen",
	"#Moving",
	"  Up/Down, j/k    select          PgUp/PgDn  a page",
	"  g/G, Home/End   first/last      Enter      detail (on Types: the type's tasks)",
	"  Esc             back; on Tasks it clears the filters",
	"#Sorting and filtering",
	"  s, >  <         next, previous sort column (Left/Right too, when live)",
	"  i               invert the order",
	"  /               filter by text in name, type or workload",
	"  t               filter by type name",
	"  S               filter by state (all, running, succeeded, failed, ...)",
	"  r               running tasks only",
	"#Time",
	"  p, Space        pause (live: hold this sample; replay: stop playing)",
	"  Left/Right      replay: one record back/forward",
	"  [ ]             replay: ten records back/forward",
	"  :               replay: jump to a time (HH:MM:SS, +30s, -5m) or #record",
	"  q, F10          quit",
	"#Task columns",
	"  CPU%  on CPU, RUNQ%  waiting for a CPU, BLK%  blocked: share of wall time",
	"        (running tasks: the last interval; finished tasks: their whole run)",
	"  VCSW/IVCSW  voluntary/involuntary context switches; RST restarts",
	"#Warnings (letters in the WARN column)",
	"  Y no-yield      on CPU for over a second without a voluntary switch",
	"  S starved       waiting for a CPU more than half of its wall time",
	"  R restart-loop  a critical task restarting over and over",
	"  L leak          a type's running count growing steadily",
	"  E lost-events   the kernel dropped events in the interval",
	"  K sampled       spawns past kernel_trace_rate: kernel figures cover only some",
};

void tt_screen_help(struct tt_canvas *c, struct tt_area a, const struct tt_model *m, struct tt_view *v)
{
	struct tt_page p;
	(void)m;
	tt_page_open(&p, a.w);
	for (size_t i = 0; i < sizeof(help_lines) / sizeof(help_lines[0]); i++) {
		const char *l = help_lines[i];
		if (l[0] == '#')
			tt_page_line(&p, TT_TITLE, NULL, "%s", l + 1);
		else
			tt_page_line(&p, TT_NORMAL, NULL, "%s", l);
	}
	tt_page_show(&p, c, a, v, TT_SCR_HELP);
}
