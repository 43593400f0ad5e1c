/* /metrics over libmicrohttpd in the collector's loop (see metrics_http.h). */
#include "metrics_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "loader.h"
#include "merge.h"
#include "prog_stats.h"
#include "server.h"
#include "snapshot.h"
#include "taskmon_events.h"

#define MAX_CONNECTIONS 16
#define MAX_PER_CLIENT  4
#define REQUEST_MEMORY  (32 * 1024)
#define IDLE_TIMEOUT_S  10
#define OBSERVE_EVERY_NS 1000000000ull
#define MAX_EXTRA        16
#define LOG_BURST        5
#define LOG_WINDOW_NS    60000000000ull   /* a client that provokes errors cannot flood stderr */

struct tmd_metrics_http {
	struct MHD_Daemon *d;
	struct tmd_metrics *mx;
	struct tmd_metrics_sources src;
	int epfd;
	unsigned port;
	uint64_t last_observe;
	struct tmd_metrics_http_stats st;
	bool starting;                /* the open's own sentence says what failed */
	uint64_t log_window_ns;       /* the library's messages: at most LOG_BURST per LOG_WINDOW_NS */
	unsigned logged;
};

static const char not_found[] = "Not found: this server answers GET /metrics only.\n";
static const char not_allowed[] = "Method not allowed: GET or HEAD /metrics.\n";
static const char failed[] = "The metrics could not be rendered: out of memory.\n";

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t real_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int tmd_metrics_parse_addr(const char *spec, struct sockaddr_storage *ss, socklen_t *sslen, char *err, size_t errlen)
{
	char host[64];
	const char *colon = strrchr(spec, ':');
	memset(ss, 0, sizeof(*ss));
	if (strcmp(spec, "off") == 0)
		return 1;
	size_t hlen = colon ? (size_t)(colon - spec) : 0;
	char *end;
	long port = colon && colon[1] ? strtol(colon + 1, &end, 10) : -1;
	if (!colon || hlen == 0 || hlen >= sizeof(host) || port < 0 || port > 65535 || *end)
		goto bad;
	memcpy(host, spec, hlen);
	host[hlen] = '\0';
	if (host[0] == '[' && host[hlen - 1] == ']') {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
		host[hlen - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
			goto bad;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*sslen = sizeof(*a6);
		return 0;
	}
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
		goto bad;
	a4->sin_family = AF_INET;
	a4->sin_port = htons((uint16_t)port);
	*sslen = sizeof(*a4);
	return 0;
bad:
	snprintf(err, errlen, "--metrics takes ADDR:PORT (127.0.0.1:9464, [::1]:9464, 0.0.0.0:9464) or off, not '%s'",
	         spec);
	return -EINVAL;
}

/* ---- a scrape --------------------------------------------------------------------- */

static char *render(struct tmd_metrics_http *h, size_t *len)
{
	const struct tmd_metrics_sources *s = &h->src;
	struct tmd_server_stats ss = { 0 };
	struct tmd_prog_stats ps;
	struct tmd_metrics_extra extra[MAX_EXTRA];
	uint64_t now = mono_ns();
	/* No registry re-read here: the merge's housekeeping keeps each within a
	 * second, and forcing it for every scrape would copy every registry's
	 * histograms each time, on the loop. */
	if (s->server)
		tmd_server_get_stats(s->server, &ss);
	struct tmd_collector_info ci = {
		.pid = getpid(), .mode = s->loader ? tmd_loader_mode(s->loader) : NULL, .started_ns = s->started_ns,
		.lost = s->loader ? tmd_loader_stat(s->loader, TM_STAT_LOST) : 0,
		.spawn_missed = s->loader ? tmd_loader_stat(s->loader, TM_STAT_SPAWN_MISSED) : 0,
		.watched = s->loader ? tmd_loader_watch_count(s->loader) : 0, .registrations = ss.registrations,
		.registrations_refused = ss.registrations_refused, .snapshots = ss.snapshots, .clients = ss.clients,
		.socket = s->socket, .state_dir = s->state_dir,
	};
	bool have_progs = s->loader && tmd_prog_stats_read(&ps) == 0;
	struct tmd_metrics_info info = {
		.ci = &ci, .started_unix_ns = s->started_ns ? real_ns() - (now - s->started_ns) : 0,
		.bpf_programs = have_progs ? ps.programs : -1, .bpf_stats_enabled = have_progs && ps.enabled,
		.bpf_run_ns = have_progs ? ps.run_ns : 0, .bpf_runs = have_progs ? ps.runs : 0,
		.scrapes = h->st.scrapes + 1, .http_rejected = h->st.rejected, .extra = extra,
		.nextra = s->extra ? s->extra(s->extra_ctx, extra, MAX_EXTRA) : 0,
	};
	if (info.nextra > MAX_EXTRA)
		info.nextra = MAX_EXTRA;
	char *body = tmd_metrics_render(h->mx, s->merge, &info, now, len);
	h->last_observe = now;
	if (body) {
		h->st.scrapes++;
		h->st.last_bytes = *len;
		h->st.last_render_ns = mono_ns() - now;
	}
	return body;
}

static enum MHD_Result reply_static(struct MHD_Connection *c, unsigned code, const char *text, const char *allow)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	if (allow)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	enum MHD_Result ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size, void **req_ctx)
{
	struct tmd_metrics_http *h = cls;
	(void)version;
	(void)upload_data;
	(void)req_ctx;
	bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0, head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
	if (strcmp(url, "/metrics") != 0) {
		h->st.rejected++;
		return reply_static(c, MHD_HTTP_NOT_FOUND, not_found, NULL);
	}
	if ((!get && !head) || *upload_size) {
		h->st.rejected++;
		return reply_static(c, MHD_HTTP_METHOD_NOT_ALLOWED, not_allowed, "GET, HEAD");
	}
	size_t len;
	char *body = render(h, &len);
	if (!body)
		return reply_static(c, MHD_HTTP_INTERNAL_SERVER_ERROR, failed, NULL);
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, TMD_METRICS_CONTENT_TYPE);
	enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

static void on_log(void *cls, const char *fmt, va_list ap)
{
	struct tmd_metrics_http *h = cls;
	char line[512];
	uint64_t now = mono_ns();
	if (h->starting)
		return;
	if (now - h->log_window_ns >= LOG_WINDOW_NS) {
		h->log_window_ns = now;
		h->logged = 0;
	}
	if (h->logged++ >= LOG_BURST) {
		if (h->logged == LOG_BURST + 1)
			fprintf(stderr, "taskmond: metrics: further messages this minute left out\n");
		return;
	}
	vsnprintf(line, sizeof(line), fmt, ap);
	size_t n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = '\0';
	fprintf(stderr, "taskmond: metrics: %s\n", line);
}

/* ---- life ------------------------------------------------------------------------- */

int tmd_metrics_http_open(struct tmd_metrics_http **out, const char *addr, const struct tmd_metrics_sources *src,
                          char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	int r = tmd_metrics_parse_addr(addr, &ss, &sslen, err, errlen);
	if (r != 0)
		return r < 0 ? r : -EINVAL;
	if (!src || !src->merge) {
		snprintf(err, errlen, "the metrics server needs the merged stats");
		return -EINVAL;
	}
	struct tmd_metrics_http *h = calloc(1, sizeof(*h));
	if (!h || tmd_metrics_new(&h->mx) < 0) {
		free(h);
		snprintf(err, errlen, "out of memory for the metrics server");
		return -ENOMEM;
	}
	memcpy(&h->src, src, src->sz < sizeof(h->src) ? src->sz : sizeof(h->src));
	h->src.sz = sizeof(h->src);
	unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
	/* The port is in the address; MHD wants one anyway. */
	errno = 0;
	h->starting = true;
	h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, on_log, h,
	                        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	                        MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS,
	                        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)MAX_PER_CLIENT,
	                        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)REQUEST_MEMORY,
	                        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S,
	                        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)MAX_CONNECTIONS, MHD_OPTION_END);
	h->starting = false;
	if (!h->d) {
		r = errno ? -errno : -EADDRINUSE;
		snprintf(err, errlen, "cannot serve metrics on %s: %s", addr,
		         r == -EADDRINUSE ? "the address is in use" : strerror(-r));
		tmd_metrics_free(h->mx);
		free(h);
		return r;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
	const union MHD_DaemonInfo *pi = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	h->epfd = di ? di->epoll_fd : -1;
	h->port = pi ? pi->port : 0;
	if (h->epfd < 0) {
		snprintf(err, errlen, "the metrics server has no epoll descriptor");
		tmd_metrics_http_close(h);
		return -EIO;
	}
	*out = h;
	return 0;
}

void tmd_metrics_http_close(struct tmd_metrics_http *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->d);
	tmd_metrics_free(h->mx);
	tmd_prog_stats_reset();
	free(h);
}

int tmd_metrics_http_fd(const struct tmd_metrics_http *h)
{
	return h ? h->epfd : -1;
}

unsigned tmd_metrics_http_port(const struct tmd_metrics_http *h)
{
	return h ? h->port : 0;
}

int tmd_metrics_http_wait_ms(struct tmd_metrics_http *h, int max_ms)
{
	MHD_UNSIGNED_LONG_LONG t;
	if (h && MHD_get_timeout(h->d, &t) == MHD_YES && t < (MHD_UNSIGNED_LONG_LONG)max_ms)
		return (int)t;
	return max_ms;
}

void tmd_metrics_http_run(struct tmd_metrics_http *h, uint64_t now)
{
	if (!h)
		return;
	MHD_run(h->d);
	if (now - h->last_observe >= OBSERVE_EVERY_NS) {
		tmd_metrics_observe(h->mx, h->src.merge, now);
		h->last_observe = now;
	}
}

void tmd_metrics_http_get_stats(const struct tmd_metrics_http *h, struct tmd_metrics_http_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (h)
		*out = h->st;
}
