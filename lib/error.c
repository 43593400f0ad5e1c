/* The thread-local sentence behind tm_last_error(). */
#include <stdarg.h>
#include <stdio.h>
#include "internal.h"
#include "taskmon.h"

static _Thread_local char last_error[256];

static void set_errorv(const char *fmt, va_list ap)
{
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
}

void tm__set_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	set_errorv(fmt, ap);
	va_end(ap);
}

int tm__fail(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	set_errorv(fmt, ap);
	va_end(ap);
	return -err;
}

const char *tm_last_error(void)
{
	return last_error[0] ? last_error : "no error";
}
