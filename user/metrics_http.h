/* /metrics over HTTP (libmicrohttpd), run from the collector's own loop.
 *
 * No thread of its own: the server's descriptor is an epoll instance that
 * the loop adds to its set; the loop waits no longer than
 * tmd_metrics_http_wait_ms says and calls tmd_metrics_http_run on every turn.
 * A request is answered inside that call, so the rendering reads the merge
 * with no lock and sees it between two events.
 *
 * Answers GET (and HEAD) /metrics with the exposition of metrics.h; any other
 * path is 404, any other method 405. Bounded: 16 connections (4 per client
 * address), 32 KiB of request memory per connection (longer request lines or
 * headers are refused by the library), connections idle for 10 s closed.
 */
#ifndef TMD_METRICS_HTTP_H
#define TMD_METRICS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "metrics.h"

struct tmd_merge;
struct tmd_loader;
struct tmd_server;

/* Figures a part of the collector adds (up to `cap`); returns how many. */
typedef size_t (*tmd_metrics_extra_fn)(void *ctx, struct tmd_metrics_extra *out, size_t cap);

/* Where a scrape's figures come from; every pointer but merge may be NULL. */
struct tmd_metrics_sources {
	size_t sz;                    /* sizeof(struct tmd_metrics_sources) */
	struct tmd_merge  *merge;
	struct tmd_loader *loader;
	struct tmd_server *server;
	const char *socket, *state_dir;
	uint64_t started_ns;          /* CLOCK_MONOTONIC when the collector started */
	tmd_metrics_extra_fn extra;
	void *extra_ctx;
};
#define TMD_METRICS_SOURCES(...) \
	(&(struct tmd_metrics_sources){ .sz = sizeof(struct tmd_metrics_sources), __VA_ARGS__ })

struct tmd_metrics_http;

/* "ADDR:PORT": a numeric IPv4 address, or an IPv6 one in brackets, and a
 * port 0-65535 (0: any free port). 1 for "off", 0 for an address, or
 * -EINVAL with a sentence in err. */
int tmd_metrics_parse_addr(const char *spec, struct sockaddr_storage *ss, socklen_t *sslen, char *err,
                           size_t errlen);

/* Binds and listens. Negative errno (-EADDRINUSE when the address is
 * taken) with a sentence in err. */
int  tmd_metrics_http_open(struct tmd_metrics_http **out, const char *addr, const struct tmd_metrics_sources *src,
                           char *err, size_t errlen);
void tmd_metrics_http_close(struct tmd_metrics_http *h);   /* NULL: no-op */
/* The epoll descriptor to wait on; -1 for NULL. */
int  tmd_metrics_http_fd(const struct tmd_metrics_http *h);
/* The port it listens on (the one chosen for port 0). */
unsigned tmd_metrics_http_port(const struct tmd_metrics_http *h);
/* max_ms, or less when the server has work due sooner. */
int  tmd_metrics_http_wait_ms(struct tmd_metrics_http *h, int max_ms);
/* Serves what is ready, without blocking; folds departed workloads' figures
 * (tmd_metrics_observe) once a second. NULL: no-op. */
void tmd_metrics_http_run(struct tmd_metrics_http *h, uint64_t now_ns);

struct tmd_metrics_http_stats {
	uint64_t scrapes, rejected;
	uint64_t last_bytes, last_render_ns;   /* the latest scrape's size and render time */
};
void tmd_metrics_http_get_stats(const struct tmd_metrics_http *h, struct tmd_metrics_http_stats *out);

#endif
