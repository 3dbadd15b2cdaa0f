/* SPDX-License-Identifier: GPL-2.0 */
/*
 * sjf: shortest expected job first.
 *
 * Jobs that will finish soon should not wait behind jobs that will not: running the
 * shortest first minimises the mean completion time. A job's expected length comes from
 * history: when a task exits, its total CPU time joins an average kept per comm, so the
 * next `cc1` or `gzip` is expected to take what the last ones took. A comm never seen
 * before is expected to take what it has used so far.
 *
 * The queue key is enqueue time + min(expected, max_expect_ms): shorter jobs jump ahead,
 * but never by more than max_expect_ms, so long jobs wait a bounded time.
 */
#include <schedcp/scx.bpf.h>
#include <schedcp/primitives/task_ctx.h>
#include <schedcp/primitives/runtime.h>
#include <schedcp/primitives/comm.h>
#include <schedcp/primitives/idle.h>

char _license[] SEC("license") = "GPL";

const volatile u64 slice_us = 10000;
const volatile u64 max_expect_ms = 1000;
const volatile u32 history_shift = 2;

#define SHARED_DSQ 0

struct task_ctx {
	struct schedcp_runtime rt;
};

SCHEDCP_TASK_CTX(struct task_ctx)

/* comm -> average total CPU time (ns) of the tasks with that comm that have exited. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, char[SCHEDCP_COMM_LEN]);
	__type(value, u64);
} history SEC(".maps");

static u64 expected_ns(struct task_struct *p, struct task_ctx *tctx)
{
	char comm[SCHEDCP_COMM_LEN] = {};
	u64 *avg, used = tctx->rt.total_ns;

	schedcp_task_comm(p, comm);
	avg = bpf_map_lookup_elem(&history, comm);
	/* What remains of the expected length, but never less than nothing. */
	if (avg && *avg > used)
		return *avg - used;
	return avg ? 0 : used;
}

s32 BPF_STRUCT_OPS(sjf_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	return schedcp_select_idle_direct(p, prev_cpu, wake_flags, slice_us * NSEC_PER_USEC);
}

/* Key: now + expected remaining work, capped so that nothing waits forever. */
void BPF_STRUCT_OPS(sjf_enqueue, struct task_struct *p, u64 enq_flags)
{
	struct task_ctx *tctx = task_ctx(p);
	u64 cap = max_expect_ms * NSEC_PER_MSEC, key = bpf_ktime_get_ns();

	if (tctx) {
		u64 e = expected_ns(p, tctx);

		key += e < cap ? e : cap;
	}
	scx_bpf_dsq_insert_vtime(p, SHARED_DSQ, slice_us * NSEC_PER_USEC, key, enq_flags);
}

void BPF_STRUCT_OPS(sjf_dispatch, s32 cpu, struct task_struct *prev)
{
	scx_bpf_dsq_move_to_local(SHARED_DSQ);
}

void BPF_STRUCT_OPS(sjf_running, struct task_struct *p)
{
	struct task_ctx *tctx = task_ctx(p);

	if (tctx)
		schedcp_rt_running(&tctx->rt, bpf_ktime_get_ns());
}

void BPF_STRUCT_OPS(sjf_stopping, struct task_struct *p, bool runnable)
{
	struct task_ctx *tctx = task_ctx(p);

	if (tctx)
		schedcp_rt_stopping(&tctx->rt, bpf_ktime_get_ns(), runnable, 3);
}

s32 BPF_STRUCT_OPS(sjf_init_task, struct task_struct *p, struct scx_init_task_args *args)
{
	return task_ctx_create(p) ? 0 : -ENOMEM;
}

/* A finished job teaches the history what its comm costs. */
void BPF_STRUCT_OPS(sjf_exit_task, struct task_struct *p, struct scx_exit_task_args *args)
{
	struct task_ctx *tctx = task_ctx(p);
	char comm[SCHEDCP_COMM_LEN] = {};
	u64 *avg, v;

	if (!tctx || !tctx->rt.total_ns)
		return;
	schedcp_task_comm(p, comm);
	avg = bpf_map_lookup_elem(&history, comm);
	v = avg ? schedcp_ewma(*avg, tctx->rt.total_ns, history_shift) : tctx->rt.total_ns;
	bpf_map_update_elem(&history, comm, &v, BPF_ANY);
}

s32 BPF_STRUCT_OPS_SLEEPABLE(sjf_init)
{
	return scx_bpf_create_dsq(SHARED_DSQ, -1);
}

SCHEDCP_DEFINE_EXIT(sjf)

SEC(".struct_ops.link")
struct sched_ext_ops sjf_ops = {
	.select_cpu	= (void *)sjf_select_cpu,
	.enqueue	= (void *)sjf_enqueue,
	.dispatch	= (void *)sjf_dispatch,
	.running	= (void *)sjf_running,
	.stopping	= (void *)sjf_stopping,
	.init_task	= (void *)sjf_init_task,
	.exit_task	= (void *)sjf_exit_task,
	.init		= (void *)sjf_init,
	.exit		= (void *)sjf_exit,
	.timeout_ms	= 5000,
	.name		= "schedcp_sjf",
};
