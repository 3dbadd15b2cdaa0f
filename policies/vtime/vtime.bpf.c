/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vtime: weighted fair sharing by virtual time.
 *
 * A task's virtual time grows by the CPU time it used, scaled by 100/weight, so a task
 * of twice the weight ages half as fast. One shared DSQ, ordered by virtual time, hands
 * the CPU to whoever has had the least of it. A task that slept cannot come back with an
 * unbounded credit: its virtual time is lifted to at most max_lag_us behind the clock.
 */
#include <schedcp/scx.bpf.h>

char _license[] SEC("license") = "GPL";

const volatile u64 slice_us = 20000;
const volatile u64 max_lag_us = 20000;

#define SHARED_DSQ 0

/* The virtual time of the task that most recently started running. */
static u64 vtime_now;

/* Prefer an idle CPU near the previous one; an idle CPU skips the queue entirely. */
s32 BPF_STRUCT_OPS(vtime_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);

	if (is_idle)
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, slice_us * NSEC_PER_USEC, 0);
	return cpu;
}

/* Queue by virtual time, after capping the credit a long sleep would otherwise earn. */
void BPF_STRUCT_OPS(vtime_enqueue, struct task_struct *p, u64 enq_flags)
{
	u64 vtime = p->scx.dsq_vtime;
	u64 lag = max_lag_us * NSEC_PER_USEC;

	if (time_before(vtime, vtime_now - lag))
		vtime = vtime_now - lag;
	scx_bpf_dsq_insert_vtime(p, SHARED_DSQ, slice_us * NSEC_PER_USEC, vtime, enq_flags);
}

/* A CPU with nothing local takes the task with the least virtual time. */
void BPF_STRUCT_OPS(vtime_dispatch, s32 cpu, struct task_struct *prev)
{
	scx_bpf_dsq_move_to_local(SHARED_DSQ);
}

/* The clock follows the running tasks, so newcomers start level with them. */
void BPF_STRUCT_OPS(vtime_running, struct task_struct *p)
{
	if (time_before(vtime_now, p->scx.dsq_vtime))
		vtime_now = p->scx.dsq_vtime;
}

/* Charge the slice actually used, inversely to weight (100 is nice 0). */
void BPF_STRUCT_OPS(vtime_stopping, struct task_struct *p, bool runnable)
{
	u64 used = slice_us * NSEC_PER_USEC - p->scx.slice;

	p->scx.dsq_vtime += used * 100 / p->scx.weight;
}

/* New tasks start at the current clock: no free credit for forking. */
void BPF_STRUCT_OPS(vtime_enable, struct task_struct *p)
{
	p->scx.dsq_vtime = vtime_now;
}

/* Built-in DSQs cannot order by vtime; create our own. */
s32 BPF_STRUCT_OPS_SLEEPABLE(vtime_init)
{
	return scx_bpf_create_dsq(SHARED_DSQ, -1);
}

SCHEDCP_DEFINE_EXIT(vtime)

SEC(".struct_ops.link")
struct sched_ext_ops vtime_ops = {
	.select_cpu	= (void *)vtime_select_cpu,
	.enqueue	= (void *)vtime_enqueue,
	.dispatch	= (void *)vtime_dispatch,
	.running	= (void *)vtime_running,
	.stopping	= (void *)vtime_stopping,
	.enable		= (void *)vtime_enable,
	.init		= (void *)vtime_init,
	.exit		= (void *)vtime_exit,
	.timeout_ms	= 5000,
	.name		= "schedcp_vtime",
};
