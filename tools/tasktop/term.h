/* The terminal: curses set-up and tear-down, keys, and copying a canvas to
 * the screen. The only file that includes curses. */
#ifndef TT_TERM_H
#define TT_TERM_H

#include <stdbool.h>

#include "canvas.h"

/* Enters the alternate screen, raw keys, no cursor; colours unless
 * NO_COLOR is set (to anything but "") or the terminal has none. SIGINT and
 * SIGTERM only set a flag (tt_term_stop_requested), so that the loop ends and
 * restores the terminal. 0, or -ENOTTY with a sentence in err. */
int  tt_term_open(char *err, size_t errlen);
/* Leaves the alternate screen and restores the terminal; safe to call twice. */
void tt_term_close(void);
void tt_term_size(int *w, int *h);
/* Copies the rows of c that differ from what was drawn last; everything
 * after tt_term_invalidate (resize). */
void tt_term_draw(const struct tt_canvas *c);
void tt_term_invalidate(void);
/* Waits up to timeout_ms for a key: an ASCII key or a TT_KEY_* (view.h),
 * or -1 on timeout or when a signal asks to stop. */
int  tt_term_key(int timeout_ms);
bool tt_term_stop_requested(void);

#endif
