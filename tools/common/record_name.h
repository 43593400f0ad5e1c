/* The names of record files, written by taskmond (user/record.c) and read by
 * the tools (records.c): taskmon-YYYYMMDDTHHMMSSZ.jsonl, the UTC second the
 * file was opened. One definition, so that writer and reader agree. */
#ifndef TM_RECORD_NAME_H
#define TM_RECORD_NAME_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define TM_RECORD_NAME_LEN (sizeof("taskmon-YYYYMMDDTHHMMSSZ.jsonl") - 1)

static inline void tm_record_file_name(char out[TM_RECORD_NAME_LEN + 1], uint64_t unix_ns)
{
	time_t t = (time_t)(unix_ns / 1000000000ull);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, TM_RECORD_NAME_LEN + 1, "taskmon-%Y%m%dT%H%M%SZ.jsonl", &tm);
}

/* Seconds since the epoch in the name, or -1 when it is not a record file's name. */
static inline int64_t tm_record_name_time(const char *name)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	if (strlen(name) != TM_RECORD_NAME_LEN || strncmp(name, "taskmon-", 8) != 0 ||
	    strcmp(name + 23, "Z.jsonl") != 0 || name[16] != 'T')
		return -1;
	for (int i = 8; i < 23; i++)
		if (i != 16 && (name[i] < '0' || name[i] > '9'))
			return -1;
	if (sscanf(name + 8, "%4d%2d%2dT%2d%2d%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
	           &tm.tm_sec) != 6 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
	    tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	time_t t = timegm(&tm);
	return t < 0 ? -1 : (int64_t)t;
}

#endif
