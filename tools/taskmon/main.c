/* taskmon: the command-line tool over what taskmond records.
 *
 *   taskmon dump DIR [...]     the recorded series as JSON Lines, CSV or OpenMetrics
 *   taskmon plan DIR... [...]  capacity planning from recorded series
 *   taskmon help [COMMAND]     this overview, or a command's usage
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{ "dump", tm_cmd_dump, "print the series a record directory holds (json, csv, openmetrics)" },
	{ "plan", tm_cmd_plan, "fit memory and CPU against load and answer what a bigger load needs" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/* Until the planner is linked in, `taskmon plan` says so instead of failing to link. */
__attribute__((weak)) int tm_cmd_plan(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "taskmon plan: this build of taskmon has no planner\n");
	return 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: taskmon COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-6s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\ntaskmon help COMMAND (or taskmon COMMAND --help) shows a command's options.\n"
	           "Records are written by taskmond --record DIR.\n");
}

static const struct command *find(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    (strcmp(argv[1], "help") == 0 && argc == 2)) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "help") == 0) {
		const struct command *c = find(argv[2]);
		if (!c || argc > 3) {
			fprintf(stderr, "taskmon: help takes one command name: dump or plan\n");
			return 2;
		}
		char *help_argv[] = { argv[2], "--help", NULL };
		return c->run(2, help_argv);
	}
	const struct command *c = find(argv[1]);
	if (!c) {
		fprintf(stderr, "taskmon: '%s' is not a command; the commands are dump and plan (taskmon --help)\n",
		        argv[1]);
		return 2;
	}
	return c->run(argc - 1, argv + 1);
}
