// SPDX-License-Identifier: GPL-2.0
/*
 * Run-queue latency histogram and per-comm runtime/wait statistics, on sched tracepoints.
 *
 * CO-RE: compiled once against a BTF dump (vmlinux.h), relocated by libbpf at load time,
 * so it loads on any kernel with BTF and tp_btf, with no kernel headers.
 *
 * A task becomes runnable at sched_wakeup / sched_wakeup_new, or when it is preempted
 * while still runnable; it stops waiting at the sched_switch that puts it on a CPU. The
 * wait is its run-queue latency. The time from that switch to the next one that takes it
 * off the CPU is its runtime.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define NBUCKETS 27 /* log2 microseconds: bucket 26 is >= 2^26 us (67 s) */
#define MAX_COMMS 1024
#define TASK_RUNNING 0

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 target_tgid; /* 0: every task */

struct comm_key {
	char comm[16];
};

struct comm_stat {
	__u64 runtime_ns;
	__u64 wait_ns;
	__u64 max_wait_ns;
	__u64 runs;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u64);
} runnable_at SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u64);
} oncpu_at SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NBUCKETS);
	__type(key, __u32);
	__type(value, __u64);
} hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_COMMS);
	__type(key, struct comm_key);
	__type(value, struct comm_stat);
} comms SEC(".maps");

static __always_inline bool wanted(struct task_struct *p)
{
	return !target_tgid || BPF_CORE_READ(p, tgid) == target_tgid;
}

static __always_inline __u32 log2_bucket(__u64 us)
{
	__u32 b = 0;

	for (int i = 0; i < NBUCKETS - 1; i++) {
		if (us < 2)
			break;
		us >>= 1;
		b++;
	}
	return b;
}

static __always_inline struct comm_stat *stat_of(struct task_struct *p)
{
	struct comm_key key = {};
	static const struct comm_stat zero;
	struct comm_stat *st;

	BPF_CORE_READ_STR_INTO(&key.comm, p, comm);
	st = bpf_map_lookup_elem(&comms, &key);
	if (st)
		return st;
	bpf_map_update_elem(&comms, &key, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&comms, &key);
}

static __always_inline int mark_runnable(struct task_struct *p)
{
	__u32 pid = BPF_CORE_READ(p, pid);
	__u64 now;

	if (!pid || !wanted(p))
		return 0;
	now = bpf_ktime_get_ns();
	bpf_map_update_elem(&runnable_at, &pid, &now, BPF_ANY);
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(on_wakeup, struct task_struct *p)
{
	return mark_runnable(p);
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(on_wakeup_new, struct task_struct *p)
{
	return mark_runnable(p);
}

static __always_inline void off_cpu(struct task_struct *prev, __u64 now)
{
	__u32 pid = BPF_CORE_READ(prev, pid);
	struct comm_stat *st;
	__u64 *start;

	if (!pid || !wanted(prev))
		return;
	start = bpf_map_lookup_elem(&oncpu_at, &pid);
	if (start) {
		st = stat_of(prev);
		if (st)
			__sync_fetch_and_add(&st->runtime_ns, now - *start);
		bpf_map_delete_elem(&oncpu_at, &pid);
	}
	if (BPF_CORE_READ(prev, __state) == TASK_RUNNING) /* preempted: waits again */
		bpf_map_update_elem(&runnable_at, &pid, &now, BPF_ANY);
}

static __always_inline void on_cpu(struct task_struct *next, __u64 now)
{
	__u32 pid = BPF_CORE_READ(next, pid), b;
	struct comm_stat *st;
	__u64 *ts, delta, *slot;

	if (!pid || !wanted(next))
		return;
	ts = bpf_map_lookup_elem(&runnable_at, &pid);
	if (ts) {
		delta = now - *ts;
		bpf_map_delete_elem(&runnable_at, &pid);
		b = log2_bucket(delta / 1000);
		slot = bpf_map_lookup_elem(&hist, &b);
		if (slot)
			__sync_fetch_and_add(slot, 1);
		st = stat_of(next);
		if (st) {
			__sync_fetch_and_add(&st->wait_ns, delta);
			__sync_fetch_and_add(&st->runs, 1);
			if (delta > st->max_wait_ns)
				st->max_wait_ns = delta;
		}
	}
	bpf_map_update_elem(&oncpu_at, &pid, &now, BPF_ANY);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u64 now = bpf_ktime_get_ns();

	off_cpu(prev, now);
	on_cpu(next, now);
	return 0;
}
