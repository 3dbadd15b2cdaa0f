/* SPDX-License-Identifier: GPL-2.0 */
/*
 * edf: earliest deadline first.
 *
 * Each time a task becomes runnable it gets a deadline: now plus the time it is likely
 * to need (its average CPU burst, at most one slice), scaled by 100/weight so that
 * higher-priority tasks get earlier deadlines. One queue ordered by deadline serves the
 * earliest first. Short, frequent work (audio, control loops) gets near deadlines and runs
 * promptly; a CPU hog's deadline is a whole slice away. Deadlines only move forward with
 * the clock, so every task is eventually the earliest: nothing starves.
 */
#include <schedcp/scx.bpf.h>
#include <schedcp/primitives/task_ctx.h>
#include <schedcp/primitives/runtime.h>
#include <schedcp/primitives/idle.h>

char _license[] SEC("license") = "GPL";

const volatile u64 slice_us = 5000;
const volatile u64 min_request_us = 100;
const volatile bool preempt = true;

#define SHARED_DSQ 0

struct task_ctx {
	struct schedcp_runtime rt;
	u64 deadline;
};

SCHEDCP_TASK_CTX(struct task_ctx)

/* Relative deadline: the expected request, clamped to [min_request, slice], by weight. */
static u64 relative_deadline(struct task_struct *p, struct task_ctx *tctx)
{
	u64 req = schedcp_rt_expected_burst(&tctx->rt), slice = slice_us * NSEC_PER_USEC;
	u64 lo = min_request_us * NSEC_PER_USEC;

	if (req > slice || !tctx->rt.bursts)
		req = slice;
	if (req < lo)
		req = lo;
	return req * 100 / (p->scx.weight ? p->scx.weight : 100);
}

s32 BPF_STRUCT_OPS(edf_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	return schedcp_select_idle_direct(p, prev_cpu, wake_flags, slice_us * NSEC_PER_USEC);
}

/* A wakeup starts a new request with a new deadline; a preempted task keeps its own. */
void BPF_STRUCT_OPS(edf_enqueue, struct task_struct *p, u64 enq_flags)
{
	struct task_ctx *tctx = task_ctx(p);
	u64 now = bpf_ktime_get_ns(), dl = now;

	if (tctx) {
		if ((enq_flags & SCX_ENQ_WAKEUP) || time_before(tctx->deadline, now - 
		    slice_us * NSEC_PER_USEC) || !tctx->deadline)
			tctx->deadline = now + relative_deadline(p, tctx);
		dl = tctx->deadline;
	}
	scx_bpf_dsq_insert_vtime(p, SHARED_DSQ, slice_us * NSEC_PER_USEC, dl, enq_flags);
	/* A waking task whose deadline is earlier than a running one's could preempt it;
	 * kicking an idle CPU at least makes sure no CPU sleeps while work waits. */
	if (preempt && (enq_flags & SCX_ENQ_WAKEUP)) {
		s32 cpu = scx_bpf_pick_idle_cpu(p->cpus_ptr, 0);

		if (cpu >= 0)
			scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
	}
}

void BPF_STRUCT_OPS(edf_dispatch, s32 cpu, struct task_struct *prev)
{
	scx_bpf_dsq_move_to_local(SHARED_DSQ);
}

void BPF_STRUCT_OPS(edf_running, struct task_struct *p)
{
	struct task_ctx *tctx = task_ctx(p);

	if (tctx)
		schedcp_rt_running(&tctx->rt, bpf_ktime_get_ns());
}

/* A task that used up its slice starts a new request: push its deadline out. */
void BPF_STRUCT_OPS(edf_stopping, struct task_struct *p, bool runnable)
{
	struct task_ctx *tctx = task_ctx(p);

	if (!tctx)
		return;
	schedcp_rt_stopping(&tctx->rt, bpf_ktime_get_ns(), runnable, 3);
	if (runnable && !p->scx.slice)
		tctx->deadline = bpf_ktime_get_ns() + relative_deadline(p, tctx);
}

s32 BPF_STRUCT_OPS(edf_init_task, struct task_struct *p, struct scx_init_task_args *args)
{
	return task_ctx_create(p) ? 0 : -ENOMEM;
}

s32 BPF_STRUCT_OPS_SLEEPABLE(edf_init)
{
	return scx_bpf_create_dsq(SHARED_DSQ, -1);
}

SCHEDCP_DEFINE_EXIT(edf)

SEC(".struct_ops.link")
struct sched_ext_ops edf_ops = {
	.select_cpu	= (void *)edf_select_cpu,
	.enqueue	= (void *)edf_enqueue,
	.dispatch	= (void *)edf_dispatch,
	.running	= (void *)edf_running,
	.stopping	= (void *)edf_stopping,
	.init_task	= (void *)edf_init_task,
	.init		= (void *)edf_init,
	.exit		= (void *)edf_exit,
	.timeout_ms	= 5000,
	.name		= "schedcp_edf",
};
