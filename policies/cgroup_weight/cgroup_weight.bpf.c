/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cgroup_weight: a named cgroup gets a configured share of the CPUs.
 *
 * Containers and services live in cgroups. Tasks in a cgroup named in `cgroups` (or
 * below one) form the named group, all other tasks the rest. Each group has a virtual
 * clock that advances by the CPU time its tasks use divided by its share; the group whose
 * clock is behind runs next. With share_pct = 80 the named group gets four CPU-seconds
 * for every one the rest gets while both have work; an idle group does not bank credit
 * beyond one slice. Within a group tasks run in arrival order.
 */
#include <schedcp/scx.bpf.h>
#include <schedcp/primitives/task_ctx.h>
#include <schedcp/primitives/runtime.h>
#include <schedcp/primitives/cgroup.h>
#include <schedcp/primitives/idle.h>
#include <schedcp/primitives/dsq.h>

char _license[] SEC("license") = "GPL";

const volatile char cgroups[64] = "";
const volatile u32 share_pct = 50;
const volatile u64 slice_us = 20000;

#define NAMED_DSQ 0
#define REST_DSQ 1

struct task_ctx {
	struct schedcp_runtime rt;
	bool named;
};

SCHEDCP_TASK_CTX(struct task_ctx)

/* Virtual clocks of the two groups, in ns scaled by 100 / share. */
static u64 named_vtime, rest_vtime;

s32 BPF_STRUCT_OPS(cgroup_weight_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	return schedcp_select_idle_direct(p, prev_cpu, wake_flags, slice_us * NSEC_PER_USEC);
}

/* The cgroup is looked up at every enqueue: tasks move between cgroups. */
void BPF_STRUCT_OPS(cgroup_weight_enqueue, struct task_struct *p, u64 enq_flags)
{
	struct task_ctx *tctx = task_ctx(p);
	bool named = schedcp_task_in_cgroup(p, cgroups, sizeof(cgroups));

	if (tctx)
		tctx->named = named;
	scx_bpf_dsq_insert(p, named ? NAMED_DSQ : REST_DSQ, slice_us * NSEC_PER_USEC, enq_flags);
}

/* The group behind on its clock runs; an idle group's clock catches up to one slice. */
void BPF_STRUCT_OPS(cgroup_weight_dispatch, s32 cpu, struct task_struct *prev)
{
	u64 lag = slice_us * NSEC_PER_USEC;
	bool named_q = scx_bpf_dsq_nr_queued(NAMED_DSQ) > 0;
	bool rest_q = scx_bpf_dsq_nr_queued(REST_DSQ) > 0;

	if (!named_q && time_before(named_vtime, rest_vtime - lag))
		named_vtime = rest_vtime - lag;
	if (!rest_q && time_before(rest_vtime, named_vtime - lag))
		rest_vtime = named_vtime - lag;
	if (named_q && (!rest_q || time_before(named_vtime, rest_vtime))) {
		if (scx_bpf_dsq_move_to_local(NAMED_DSQ))
			return;
	}
	if (scx_bpf_dsq_move_to_local(REST_DSQ))
		return;
	scx_bpf_dsq_move_to_local(NAMED_DSQ);
}

void BPF_STRUCT_OPS(cgroup_weight_running, struct task_struct *p)
{
	struct task_ctx *tctx = task_ctx(p);

	if (tctx)
		schedcp_rt_running(&tctx->rt, bpf_ktime_get_ns());
}

/* Charge the group: used / share, so a larger share ages more slowly. */
void BPF_STRUCT_OPS(cgroup_weight_stopping, struct task_struct *p, bool runnable)
{
	struct task_ctx *tctx = task_ctx(p);
	u64 used;

	if (!tctx)
		return;
	used = schedcp_rt_stopping(&tctx->rt, bpf_ktime_get_ns(), runnable, 3);
	if (tctx->named)
		__sync_fetch_and_add(&named_vtime, used * 100 / share_pct);
	else
		__sync_fetch_and_add(&rest_vtime, used * 100 / (100 - share_pct));
}

s32 BPF_STRUCT_OPS(cgroup_weight_init_task, struct task_struct *p,
		   struct scx_init_task_args *args)
{
	return task_ctx_create(p) ? 0 : -ENOMEM;
}

s32 BPF_STRUCT_OPS_SLEEPABLE(cgroup_weight_init)
{
	return schedcp_create_dsqs(NAMED_DSQ, 2);
}

SCHEDCP_DEFINE_EXIT(cgroup_weight)

SEC(".struct_ops.link")
struct sched_ext_ops cgroup_weight_ops = {
	.select_cpu	= (void *)cgroup_weight_select_cpu,
	.enqueue	= (void *)cgroup_weight_enqueue,
	.dispatch	= (void *)cgroup_weight_dispatch,
	.running	= (void *)cgroup_weight_running,
	.stopping	= (void *)cgroup_weight_stopping,
	.init_task	= (void *)cgroup_weight_init_task,
	.init		= (void *)cgroup_weight_init,
	.exit		= (void *)cgroup_weight_exit,
	.timeout_ms	= 5000,
	.name		= "schedcp_cgroup_weight",
};
