/* The subcommands of `taskmon`. Each gets the arguments from its own name
 * on, as a program gets its argv: argv[0] is "dump" or "plan", and
 * "--help" among the rest prints its usage to stdout and returns 0.
 * Return value: the exit code (0 done, 1 failed, 2 bad usage). */
#ifndef TM_COMMANDS_H
#define TM_COMMANDS_H

int tm_cmd_dump(int argc, char **argv);
int tm_cmd_plan(int argc, char **argv);

#endif
