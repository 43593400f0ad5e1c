/* Kernel feature and privilege probes. Each loads the smallest program that
 * shows the feature works (return 0) and attaches it for an instant where
 * attaching is the question, as libbpf-tools' probe_tp_btf does. */
#include "probe.h"

#include <errno.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

static bool has_cap(const struct __user_cap_data_struct d[2], int cap)
{
	return (d[cap / 32].effective >> (cap % 32)) & 1u;
}

int tmd_check_privileges(char *missing, size_t len)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d) != 0)
		memset(d, 0, sizeof(d));
	bool admin = has_cap(d, CAP_SYS_ADMIN), bpf = has_cap(d, CAP_BPF), perfmon = has_cap(d, CAP_PERFMON);
	if (admin || (bpf && perfmon))
		return 0;
	snprintf(missing, len, "%s%s%s", bpf ? "" : "CAP_BPF", !bpf && !perfmon ? " and " : "",
	         perfmon ? "" : "CAP_PERFMON");
	return -EPERM;
}

static const struct bpf_insn ret0[] = {
	{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
	{ .code = BPF_JMP | BPF_EXIT },
};
#define RET0_CNT (sizeof(ret0) / sizeof(ret0[0]))

bool tmd_probe_tp_btf(const char *tp)
{
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_RAW_TP);
	int id = libbpf_find_vmlinux_btf_id(tp, BPF_TRACE_RAW_TP);
	if (id <= 0)
		return false;
	opts.attach_btf_id = (__u32)id;
	int fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, NULL, "GPL", ret0, RET0_CNT, &opts);
	if (fd < 0)
		return false;
	int link = bpf_raw_tracepoint_open(NULL, fd);
	if (link >= 0)
		close(link);
	close(fd);
	return link >= 0;
}

bool tmd_probe_raw_tp(const char *tp)
{
	int fd = bpf_prog_load(BPF_PROG_TYPE_RAW_TRACEPOINT, NULL, "GPL", ret0, RET0_CNT, NULL);
	if (fd < 0)
		return false;
	int link = bpf_raw_tracepoint_open(tp, fd);
	if (link >= 0)
		close(link);
	close(fd);
	return link >= 0;
}

static void set(struct tmd_feature *f, const char *name, bool needed, bool ok, const char *detail)
{
	f->name = name;
	f->needed = needed;
	f->ok = ok;
	snprintf(f->detail, sizeof(f->detail), "%s", detail);
}

static bool btf_ok(char *why, size_t len)
{
	struct btf *btf = btf__load_vmlinux_btf();
	int err = libbpf_get_error(btf);
	if (err) {
		snprintf(why, len, "/sys/kernel/btf/vmlinux: %s (the kernel needs CONFIG_DEBUG_INFO_BTF)",
		         strerror(-err));
		return false;
	}
	btf__free(btf);
	snprintf(why, len, "/sys/kernel/btf/vmlinux");
	return true;
}

/* Run-queue wait is the kernel's own sched_info.run_delay: task_struct has
 * it only with CONFIG_SCHED_INFO. */
static bool sched_info_ok(char *why, size_t len)
{
	struct btf *btf = btf__load_vmlinux_btf();
	bool ok = false;
	if (!libbpf_get_error(btf)) {
		int id = btf__find_by_name_kind(btf, "task_struct", BTF_KIND_STRUCT);
		const struct btf_type *t = id > 0 ? btf__type_by_id(btf, id) : NULL;
		const struct btf_member *m = t ? btf_members(t) : NULL;
		for (int i = 0; t && i < btf_vlen(t) && !ok; i++)
			ok = strcmp(btf__name_by_offset(btf, m[i].name_off), "sched_info") == 0;
		btf__free(btf);
	}
	snprintf(why, len, "%s", ok ? "run-queue wait from the kernel's sched_info.run_delay"
	                            : "task_struct has no sched_info (CONFIG_SCHED_INFO): run-queue wait reads 0");
	return ok;
}

static bool uprobes_ok(char *why, size_t len)
{
	bool pmu = access("/sys/bus/event_source/devices/uprobe/type", R_OK) == 0;
	bool prog = libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_KPROBE, NULL) == 1;
	snprintf(why, len, "%s", !pmu ? "no uprobe PMU (the kernel needs CONFIG_UPROBE_EVENTS)"
	                      : !prog ? "uprobe programs do not load" : "uprobe PMU, for the library's USDT probes");
	return pmu && prog;
}

size_t tmd_probe_features(struct tmd_feature *out, size_t cap)
{
	struct tmd_feature f[7];
	char why[160], missing[64];
	size_t n = 0;
	bool priv = tmd_check_privileges(missing, sizeof(missing)) == 0;
	snprintf(why, sizeof(why), priv ? "CAP_BPF and CAP_PERFMON" : "missing %s: run as root", missing);
	set(&f[n++], "privileges", true, priv, why);
	bool btf = btf_ok(why, sizeof(why));
	set(&f[n++], "btf", true, btf, why);
	bool tp_btf = priv && btf && tmd_probe_tp_btf("sched_switch");
	bool raw_tp = priv && tmd_probe_raw_tp("sched_switch");
	const char *no = priv ? "not available" : "not probed without privileges";
	set(&f[n++], "tp_btf", false, tp_btf, tp_btf ? "typed tracepoint programs attach (sched_switch)" : no);
	set(&f[n++], "raw_tp", !tp_btf, raw_tp, raw_tp ? "raw tracepoint programs attach (sched_switch)" : no);
	bool rb = priv && libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, NULL) == 1;
	set(&f[n++], "ringbuf", true, rb, rb ? "BPF ring buffer maps load" : priv ? "BPF ring buffer maps do not load" : no);
	bool up = priv && uprobes_ok(why, sizeof(why));
	set(&f[n++], "uprobes", true, up, priv ? why : "not probed without privileges");
	bool si = btf && sched_info_ok(why, sizeof(why));
	set(&f[n++], "sched_info", false, si, btf ? why : "not probed without BTF");
	if (n > cap)
		n = cap;
	memcpy(out, f, n * sizeof(f[0]));
	return n;
}
