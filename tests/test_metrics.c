/* The Prometheus exposition (user/metrics.c) rendered from a merge built of
 * this process's own registry and synthetic kernel events, checked line by
 * line and by promtool; and the HTTP side (user/metrics_http.c) driven from
 * an epoll loop as taskmond drives it. Unprivileged: no BPF is loaded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "integration/bpf_test.h"
#include "merge.h"
#include "metrics.h"
#include "metrics_http.h"
#include "taskmon.h"

#define SEC 1000000000ull
#define ODD_TYPE "we\"ird\\type"   /* printable ASCII, so a valid type name, and in need of escaping */

struct fixture {
	struct tmd_merge *m;
	struct tmd_metrics *mx;
	pid_t me;
	char comm[16];
	int odd_type;
	uint64_t id;
};

static int body(void *arg)
{
	return (int)(intptr_t)arg;
}

/* Tasks of this process, so that its registry has counters: 5 network (one
 * fails), 3 of ODD_TYPE. */
static void spawn_some(int odd_type)
{
	tm_task *t[8];
	for (int i = 0; i < 8; i++)
		assert_int_equal(tm_spawn(&t[i], "job", body, (void *)(intptr_t)(i == 4),
		                          TM_SPAWN_OPTS(.type = i < 5 ? TM_NETWORK : odd_type)), 0);
	for (int i = 0; i < 8; i++)
		assert_int_equal(tm_join(t[i], 5000, NULL, NULL), 0);
}

static struct tm_ev_task_start mk_start(pid_t pid, uint64_t id, unsigned type, uint64_t latency)
{
	struct tm_ev_task_start e;
	memset(&e, 0, sizeof(e));
	e.h = (struct tm_ev_hdr){ .ts_ns = bt_now_ns(), .task_id = id, .kind = TM_EV_TASK_START, .pid = (__u32)pid,
	                          .tid = (__u32)pid };
	e.spawn_ns = e.h.ts_ns - latency;
	e.latency_ns = latency;
	e.type = type;
	snprintf(e.name, sizeof(e.name), "job");
	return e;
}

static struct tm_ev_task_end mk_end(pid_t pid, uint64_t id, uint64_t oncpu, uint64_t runq)
{
	struct tm_ev_task_end e;
	memset(&e, 0, sizeof(e));
	e.h = (struct tm_ev_hdr){ .ts_ns = bt_now_ns(), .task_id = id, .kind = TM_EV_TASK_END, .pid = (__u32)pid,
	                          .tid = (__u32)pid };
	e.start_ns = e.h.ts_ns - oncpu - runq;
	e.oncpu_ns = oncpu;
	e.runq_ns = runq;
	e.status = TM_SUCCEEDED;
	return e;
}

/* One task through the merge: its latency, on-CPU time and run-queue wait. */
static void task(struct fixture *f, unsigned type, uint64_t latency, uint64_t oncpu, uint64_t runq)
{
	uint64_t now = bt_now_ns();
	struct tm_ev_task_start s = mk_start(f->me, ++f->id + 1000000, type, latency);
	struct tm_ev_task_end e = mk_end(f->me, f->id + 1000000, oncpu, runq);
	assert_int_equal(tmd_merge_event(f->m, &s, sizeof(s), now), 0);
	assert_int_equal(tmd_merge_event(f->m, &e, sizeof(e), now), 0);
}

static void crash(struct fixture *f, int sig)
{
	struct tm_ev_crash c;
	memset(&c, 0, sizeof(c));
	c.h = (struct tm_ev_hdr){ .ts_ns = bt_now_ns(), .kind = TM_EV_CRASH, .pid = (__u32)f->me, .tid = (__u32)f->me };
	c.sig = sig;
	c.sender_pid = (__u32)f->me;
	assert_int_equal(tmd_merge_event(f->m, &c, sizeof(c), bt_now_ns()), 0);
}

static int setup(void **state)
{
	static struct fixture f;
	static bool spawned;
	memset(&f, 0, sizeof(f));
	f.me = getpid();
	if (tm_init(NULL) != 0)
		return -1;
	f.odd_type = tm_type_register(ODD_TYPE);
	if (f.odd_type < 0)
		return -1;
	if (!spawned)
		spawn_some(f.odd_type);
	spawned = true;
	FILE *c = fopen("/proc/self/comm", "r");
	if (!c || !fgets(f.comm, sizeof(f.comm), c))
		return -1;
	fclose(c);
	f.comm[strcspn(f.comm, "\n")] = '\0';
	if (tmd_merge_new(&f.m, TMD_MERGE_OPTS(.retention_ns = SEC)) < 0 || tmd_metrics_new(&f.mx) < 0)
		return -1;
	if (tmd_merge_add(f.m, f.me, bt_now_ns()) < 0)
		return -1;
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	tmd_metrics_free(f->mx);
	tmd_merge_free(f->m);
	return 0;
}

static char *render(struct fixture *f, uint64_t now, size_t *len)
{
	tmd_merge_refresh(f->m, now, 0);
	char *text = tmd_metrics_render(f->mx, f->m, NULL, now, len);
	assert_non_null(text);
	assert_int_equal(strlen(text), *len);
	return text;
}

/* The value of the sample whose name and labels are exactly `series`; -1 when absent. */
static long long sample(const char *text, const char *series)
{
	size_t n = strlen(series);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return atoll(p + n + 1);
	return -1;
}

static long long pair(const char *text, const struct fixture *f, const char *family, const char *type,
                      const char *more)
{
	char series[512];
	snprintf(series, sizeof(series), "%s{workload=\"%s\",type=\"%s\"%s}", family, f->comm, type, more ? more : "");
	return sample(text, series);
}

static void test_escape(void **state)
{
	(void)state;
	char out[64];
	assert_int_equal(tmd_metrics_escape_label(out, sizeof(out), "plain"), 5);
	assert_string_equal(out, "plain");
	assert_int_equal(tmd_metrics_escape_label(out, sizeof(out), "a\"b\\c\nd"), 10);
	assert_string_equal(out, "a\\\"b\\\\c\\nd");
	/* Neither control bytes nor invalid UTF-8 reach the output. */
	tmd_metrics_escape_label(out, sizeof(out), "x\x01y\xffz\t");
	assert_string_equal(out, "x?y?z?");
	/* Cut, as snprintf would, with the whole length returned. */
	assert_int_equal(tmd_metrics_escape_label(out, 4, "\"\"\""), 6);
	assert_string_equal(out, "\\\"\\");
}

static void test_counters_and_histograms(void **state)
{
	struct fixture *f = *state;
	size_t len;
	/* network: latencies 1.5 us x3 and 20 us x2; on-CPU 3 ms; run-queue 40 us. */
	for (int i = 0; i < 3; i++)
		task(f, TM_NETWORK, 1500, 3000000, 40000);
	for (int i = 0; i < 2; i++)
		task(f, TM_NETWORK, 20000, 3000000, 40000);
	task(f, (unsigned)f->odd_type, 2000000000ull, 1000, 0);   /* 2 s */
	crash(f, 11);
	crash(f, 11);
	crash(f, 7);
	char *text = render(f, bt_now_ns(), &len);
	/* Counters: the library's own, from the registry. */
	assert_int_equal(pair(text, f, "taskmon_tasks_spawned_total", "network", NULL), 5);
	assert_int_equal(pair(text, f, "taskmon_tasks_completed_total", "network", NULL), 4);
	assert_int_equal(pair(text, f, "taskmon_tasks_failed_total", "network", NULL), 1);
	assert_int_equal(pair(text, f, "taskmon_tasks_running", "network", NULL), 0);
	assert_int_equal(pair(text, f, "taskmon_tasks_spawned_total", "we\\\"ird\\\\type", NULL), 3);
	assert_int_equal(pair(text, f, "taskmon_tasks_rejected_total", "we\\\"ird\\\\type", NULL), 0);
	/* Types without any figure are left out. */
	assert_int_equal(pair(text, f, "taskmon_tasks_spawned_total", "database", NULL), -1);
	/* Cumulative buckets. */
	const char *lat = "taskmon_task_spawn_latency_seconds_bucket";
	assert_int_equal(pair(text, f, lat, "network", ",le=\"1e-06\""), 0);
	assert_int_equal(pair(text, f, lat, "network", ",le=\"2.5e-06\""), 3);
	assert_int_equal(pair(text, f, lat, "network", ",le=\"1e-05\""), 3);
	assert_int_equal(pair(text, f, lat, "network", ",le=\"2.5e-05\""), 5);
	assert_int_equal(pair(text, f, lat, "network", ",le=\"+Inf\""), 5);
	assert_int_equal(pair(text, f, "taskmon_task_spawn_latency_seconds_count", "network", NULL), 5);
	assert_non_null(strstr(text, "taskmon_task_spawn_latency_seconds_sum{workload=\"test_metrics\","
	                             "type=\"network\"} 0.000044500\n"));
	assert_int_equal(pair(text, f, lat, "we\\\"ird\\\\type", ",le=\"1\""), 0);
	assert_int_equal(pair(text, f, lat, "we\\\"ird\\\\type", ",le=\"2.5\""), 1);
	const char *oncpu = "taskmon_task_oncpu_seconds_bucket", *runq = "taskmon_task_runqueue_wait_seconds_bucket";
	assert_int_equal(pair(text, f, oncpu, "network", ",le=\"0.0025\""), 0);
	assert_int_equal(pair(text, f, oncpu, "network", ",le=\"0.005\""), 5);
	assert_int_equal(pair(text, f, runq, "network", ",le=\"2.5e-05\""), 0);
	assert_int_equal(pair(text, f, runq, "network", ",le=\"5e-05\""), 5);
	assert_non_null(strstr(text, "taskmon_task_runqueue_wait_seconds_sum{workload=\"test_metrics\","
	                             "type=\"network\"} 0.000200000\n"));
	/* Crashes by signal. */
	char series[128];
	snprintf(series, sizeof(series), "taskmon_crashes_total{workload=\"%s\",signal=\"SIGSEGV\"}", f->comm);
	assert_int_equal(sample(text, series), 2);
	snprintf(series, sizeof(series), "taskmon_crashes_total{workload=\"%s\",signal=\"SIGBUS\"}", f->comm);
	assert_int_equal(sample(text, series), 1);
	/* The collector's own. */
	assert_int_equal(sample(text, "taskmon_collector_workloads_live"), 1);
	assert_true(sample(text, "taskmon_collector_events_total") >= 15);
	assert_non_null(strstr(text, "# TYPE taskmon_task_spawn_latency_seconds histogram\n"));
	assert_non_null(strstr(text, "\ntaskmon_collector_scrape_duration_seconds 0."));
	/* No BPF figures when they are not known. */
	assert_null(strstr(text, "taskmon_collector_bpf_runs_total"));
	free(text);
}

/* A workload that is gone keeps its totals, after the merge forgets it too;
 * its running tasks no longer count. */
static void test_departed_totals_stay(void **state)
{
	struct fixture *f = *state;
	size_t len;
	task(f, TM_NETWORK, 1500, 1000, 0);
	uint64_t now = bt_now_ns();
	char *before = render(f, now, &len);
	long long spawned = pair(before, f, "taskmon_tasks_spawned_total", "network", NULL);
	long long lat = pair(before, f, "taskmon_task_spawn_latency_seconds_count", "network", NULL);
	assert_int_equal(spawned, 5);
	assert_int_equal(lat, 1);
	free(before);

	tmd_merge_gone(f->m, f->me, now);
	/* Gone but not folded yet, then folded: the same figures either way. */
	char *text = tmd_metrics_render(f->mx, f->m, NULL, now + 1, &len);
	assert_int_equal(pair(text, f, "taskmon_tasks_spawned_total", "network", NULL), spawned);
	free(text);
	now += TMD_METRICS_FOLD_DELAY_NS;
	text = tmd_metrics_render(f->mx, f->m, NULL, now, &len);
	assert_int_equal(pair(text, f, "taskmon_tasks_spawned_total", "network", NULL), spawned);
	assert_int_equal(pair(text, f, "taskmon_task_spawn_latency_seconds_count", "network", NULL), lat);
	assert_int_equal(sample(text, "taskmon_collector_workloads_departed"), 1);
	free(text);

	/* Past the retention the merge drops it; the totals remain. */
	pid_t gone[4];
	now += 2 * SEC;
	for (int i = 0; i < 3; i++)
		tmd_merge_tick(f->m, now + (uint64_t)i * SEC, gone, 4);
	text = tmd_metrics_render(f->mx, f->m, NULL, now + 3 * SEC, &len);
	assert_int_equal(sample(text, "taskmon_collector_workloads_departed"), 0);
	assert_int_equal(pair(text, f, "taskmon_tasks_spawned_total", "network", NULL), spawned);
	assert_int_equal(pair(text, f, "taskmon_task_spawn_latency_seconds_count", "network", NULL), lat);
	assert_int_equal(pair(text, f, "taskmon_tasks_running", "network", NULL), 0);
	free(text);
}

/* Past the pair limit, pairs are summed under workload="(other)": nothing is lost. */
static void test_series_limit(void **state)
{
	struct fixture *f = *state;
	size_t len;
	tmd_metrics_set_max_series(f->mx, 1);
	task(f, TM_NETWORK, 1500, 1000, 0);
	task(f, (unsigned)f->odd_type, 1500, 1000, 0);
	char *text = render(f, bt_now_ns(), &len);
	long long own = pair(text, f, "taskmon_tasks_spawned_total", "network", NULL);
	long long other = sample(text, "taskmon_tasks_spawned_total{workload=\"(other)\",type=\"network\"}");
	long long odd_own = pair(text, f, "taskmon_tasks_spawned_total", "we\\\"ird\\\\type", NULL);
	long long odd_other =
		sample(text, "taskmon_tasks_spawned_total{workload=\"(other)\",type=\"we\\\"ird\\\\type\"}");
	/* One of the two pairs got the series; the other is under "(other)", with its counts. */
	assert_true((own == 5 && other == -1 && odd_own == -1 && odd_other == 3) ||
	            (own == -1 && other == 5 && odd_own == 3 && odd_other == -1));
	assert_true(sample(text, "taskmon_collector_series_overflow_total") >= 1);
	free(text);
}

/* Collector figures from the caller, and its further ones (bad names skipped). */
static void test_collector_info(void **state)
{
	struct fixture *f = *state;
	size_t len;
	struct tmd_collector_info ci = { .mode = "tp_btf", .lost = 7, .watched = 3, .registrations = 2 };
	struct tmd_metrics_extra extra[] = {
		{ "taskmon_record_errors_total", "Errors.", true, 4 },
		{ "9bad name", "Never shown.", false, 1 },
	};
	struct tmd_metrics_info info = { .ci = &ci, .bpf_programs = 10, .bpf_stats_enabled = true,
	                                 .bpf_run_ns = 1500000001, .bpf_runs = 99, .scrapes = 5,
	                                 .started_unix_ns = 1700000000123456789ull, .extra = extra, .nextra = 2 };
	char *text = tmd_metrics_render(f->mx, f->m, &info, bt_now_ns(), &len);
	assert_non_null(strstr(text, "\ntaskmon_collector_info{mode=\"tp_btf\"} 1\n"));
	assert_int_equal(sample(text, "taskmon_collector_events_lost_total"), 7);
	assert_int_equal(sample(text, "taskmon_collector_workloads_watched"), 3);
	assert_int_equal(sample(text, "taskmon_collector_bpf_programs"), 10);
	assert_int_equal(sample(text, "taskmon_collector_bpf_stats_enabled"), 1);
	assert_non_null(strstr(text, "\ntaskmon_collector_bpf_run_seconds_total 1.500000001\n"));
	assert_int_equal(sample(text, "taskmon_collector_bpf_runs_total"), 99);
	assert_non_null(strstr(text, "\ntaskmon_collector_start_time_seconds 1700000000.123456789\n"));
	assert_int_equal(sample(text, "taskmon_collector_scrapes_total"), 5);
	assert_int_equal(sample(text, "taskmon_record_errors_total"), 4);
	assert_null(strstr(text, "9bad"));
	free(text);
}

/* Every family once, HELP and TYPE before its samples, no series twice. */
static void test_well_formed(void **state)
{
	struct fixture *f = *state;
	size_t len;
	task(f, TM_DATABASE, 900, 1000, 10);
	char *text = render(f, bt_now_ns(), &len);
	assert_true(len > 0 && text[len - 1] == '\n');
	char *copy = strdup(text), *save = NULL;
	char family[128] = "", seen[8192] = " ";
	size_t lines = 0;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save), lines++) {
		if (strncmp(line, "# HELP ", 7) == 0) {
			sscanf(line + 7, "%127s", family);
			char key[132];
			snprintf(key, sizeof(key), " %s ", family);
			assert_null(strstr(seen, key));   /* a family is written once */
			strncat(seen, key + 1, sizeof(seen) - strlen(seen) - 1);
			continue;
		}
		if (line[0] == '#')
			continue;
		assert_int_equal(strncmp(line, family, strlen(family)), 0);   /* under its family */
		/* The same series never twice: nothing but this line starts the same up to its value. */
		const char *sp = strrchr(line, ' ');
		assert_non_null(sp);
		size_t key = (size_t)(sp - line) + 1;
		char *again = strstr(text, line);
		assert_non_null(again);
		for (const char *p = text; (p = strstr(p, "\n")) != NULL;) {
			p++;
			if (p != again && strncmp(p, line, key) == 0)
				fail_msg("series written twice: %.*s", (int)key, line);
		}
	}
	assert_true(lines > 100);
	free(copy);
	free(text);
}

/* promtool (Debian's prometheus package) parses and lints the output. */
static void test_promtool(void **state)
{
	struct fixture *f = *state;
	size_t len;
	if (system("command -v promtool >/dev/null 2>&1") != 0) {
		print_message("skipped: promtool is not installed (Debian package prometheus)\n");
		skip();
	}
	crash(f, 6);
	char *text = render(f, bt_now_ns(), &len);
	char path[] = "/tmp/test_metrics.XXXXXX", cmd[256], out[4096] = "";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	int st = pclose(p);
	unlink(path);
	free(text);
	if (n)
		print_message("promtool: %s\n", out);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(n, 0);
}

/* ---- HTTP ------------------------------------------------------------------------ */

struct http_loop {
	struct tmd_metrics_http *h;
	int epfd;
};

/* One turn of a loop like taskmond's. */
static void turn(struct http_loop *l, int max_ms)
{
	struct epoll_event ev[4];
	epoll_wait(l->epfd, ev, 4, tmd_metrics_http_wait_ms(l->h, max_ms));
	tmd_metrics_http_run(l->h, bt_now_ns());
}

/* A connection to the server; non-blocking ones may still be connecting (or refused). */
static int client_opt(unsigned port, bool nonblock)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
	assert_true(fd >= 0);
	int r = connect(fd, (struct sockaddr *)&a, sizeof(a));
	if (!nonblock)
		assert_int_equal(r, 0);
	return fd;
}

static int client(unsigned port)
{
	return client_opt(port, false);
}

/* Sends req, runs the loop until the server closes; the reply in buf. */
static size_t exchange(struct http_loop *l, const char *req, size_t reqlen, char *buf, size_t cap)
{
	int fd = client(tmd_metrics_http_port(l->h));
	size_t got = 0, sent = 0;
	uint64_t end = bt_now_ns() + 10 * SEC;
	while (bt_now_ns() < end) {
		if (sent < reqlen) {
			ssize_t k = send(fd, req + sent, reqlen - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (k > 0)
				sent += (size_t)k;
			else if (k < 0 && errno != EAGAIN)
				sent = reqlen;   /* refused mid-way: read what it says */
		}
		turn(l, 5);
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 5) <= 0)
			continue;
		ssize_t k = recv(fd, buf + got, cap - 1 - got, 0);
		if (k <= 0)
			break;
		got += (size_t)k;
		if (got == cap - 1)
			break;
	}
	close(fd);
	buf[got] = '\0';
	return got;
}

static void test_http(void **state)
{
	struct fixture *f = *state;
	static char buf[1 << 20];
	char err[256];
	struct http_loop l;
	assert_int_equal(tmd_metrics_parse_addr("127.0.0.1", &(struct sockaddr_storage){ 0 }, &(socklen_t){ 0 }, err,
	                                        sizeof(err)),
	                 -EINVAL);
	assert_non_null(strstr(err, "ADDR:PORT"));
	assert_int_equal(tmd_metrics_parse_addr("localhost:9464", &(struct sockaddr_storage){ 0 }, &(socklen_t){ 0 },
	                                        err, sizeof(err)),
	                 -EINVAL);
	assert_int_equal(tmd_metrics_parse_addr("[::1]:65536", &(struct sockaddr_storage){ 0 }, &(socklen_t){ 0 }, err,
	                                        sizeof(err)),
	                 -EINVAL);
	assert_int_equal(tmd_metrics_parse_addr("[::1]:9464", &(struct sockaddr_storage){ 0 }, &(socklen_t){ 0 }, err,
	                                        sizeof(err)),
	                 0);
	assert_int_equal(tmd_metrics_parse_addr("off", &(struct sockaddr_storage){ 0 }, &(socklen_t){ 0 }, err,
	                                        sizeof(err)),
	                 1);
	assert_int_equal(tmd_metrics_http_open(&l.h, "127.0.0.1:0", TMD_METRICS_SOURCES(.merge = f->m), err,
	                                       sizeof(err)),
	                 0);
	assert_true(tmd_metrics_http_port(l.h) > 0);
	/* The same address again: taken. */
	struct tmd_metrics_http *second;
	char addr[32];
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", tmd_metrics_http_port(l.h));
	assert_int_equal(tmd_metrics_http_open(&second, addr, TMD_METRICS_SOURCES(.merge = f->m), err, sizeof(err)),
	                 -EADDRINUSE);
	assert_non_null(strstr(err, "in use"));
	l.epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = tmd_metrics_http_fd(l.h) };
	assert_int_equal(epoll_ctl(l.epfd, EPOLL_CTL_ADD, tmd_metrics_http_fd(l.h), &ev), 0);

	static const char get[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	exchange(&l, get, strlen(get), buf, sizeof(buf));
	assert_non_null(strstr(buf, "HTTP/1.1 200"));
	assert_non_null(strstr(buf, "Content-Type: text/plain; version=0.0.4; charset=utf-8"));
	assert_non_null(strstr(buf, "\r\n\r\n# HELP taskmon_tasks_spawned_total"));
	assert_non_null(strstr(buf, "\ntaskmon_collector_scrapes_total 1\n"));

	static const char other[] = "GET /secret HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	exchange(&l, other, strlen(other), buf, sizeof(buf));
	assert_non_null(strstr(buf, "HTTP/1.1 404"));
	static const char post[] =
		"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi";
	exchange(&l, post, strlen(post), buf, sizeof(buf));
	assert_non_null(strstr(buf, "HTTP/1.1 405"));
	assert_non_null(strstr(buf, "Allow: GET, HEAD"));

	/* A request larger than the connection's memory: refused, never read whole. */
	size_t big = 256 * 1024;
	char *huge = malloc(big);
	int n = snprintf(huge, big, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: ");
	memset(huge + n, 'a', big - (size_t)n - 4);
	memcpy(huge + big - 4, "\r\n\r\n", 4);
	exchange(&l, huge, big, buf, sizeof(buf));
	free(huge);
	assert_null(strstr(buf, "HTTP/1.1 200"));

	/* Connections beyond the limit are not kept; the server goes on answering. */
	int fds[24];
	for (int i = 0; i < 24; i++) {
		fds[i] = client_opt(tmd_metrics_http_port(l.h), true);
		turn(&l, 2);
	}
	for (int i = 0; i < 20; i++)
		turn(&l, 5);
	int closed = 0;
	for (int i = 0; i < 24; i++) {
		struct pollfd p = { .fd = fds[i], .events = POLLIN };
		char c;
		if (poll(&p, 1, 0) == 1 && recv(fds[i], &c, 1, MSG_DONTWAIT) <= 0)
			closed++;
	}
	print_message("%d of 24 idle connections closed or refused at once (limit 4 per address)\n", closed);
	assert_true(closed >= 24 - 4);
	for (int i = 0; i < 24; i++)
		close(fds[i]);
	for (int i = 0; i < 5; i++)
		turn(&l, 5);
	exchange(&l, get, strlen(get), buf, sizeof(buf));
	assert_non_null(strstr(buf, "HTTP/1.1 200"));

	struct tmd_metrics_http_stats st;
	tmd_metrics_http_get_stats(l.h, &st);
	assert_int_equal(st.scrapes, 2);
	assert_true(st.rejected >= 2);
	close(l.epfd);
	tmd_metrics_http_close(l.h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test_setup_teardown(test_counters_and_histograms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_departed_totals_stay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_series_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_collector_info, setup, teardown),
		cmocka_unit_test_setup_teardown(test_well_formed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_promtool, setup, teardown),
		cmocka_unit_test_setup_teardown(test_http, setup, teardown),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	tm_shutdown();
	return r;
}
