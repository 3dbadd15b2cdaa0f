/* SPDX-License-Identifier: GPL-2.0 */
/*
 * batch: throughput first, long slices, minimal preemption.
 *
 * Compile farms and data processing care about total work done, not about how soon any
 * one task answers. Each switch costs cache and TLB warmth, so this policy gives long
 * slices and never preempts: a task runs until its slice ends or it blocks. Tasks stay on
 * their previous CPU when it is idle. Fairness is by virtual time, weighted by nice, so
 * no job starves; the slice shrinks when many tasks wait so that every one of them runs
 * within about max_wait_ms.
 */
#include <schedcp/scx.bpf.h>
#include <schedcp/primitives/idle.h>

char _license[] SEC("license") = "GPL";

const volatile u64 slice_ms = 50;
const volatile u64 max_wait_ms = 1000;

#define SHARED_DSQ 0

static u64 vtime_now;

/* Long, but short enough that everybody waiting runs within max_wait_ms. */
static u64 slice_ns(void)
{
	u64 waiting = scx_bpf_dsq_nr_queued(SHARED_DSQ) + 1;
	u64 cpus = scx_bpf_nr_cpu_ids();
	u64 fair = max_wait_ms * NSEC_PER_MSEC * cpus / waiting;
	u64 want = slice_ms * NSEC_PER_MSEC;

	return fair < want ? (fair > NSEC_PER_MSEC ? fair : NSEC_PER_MSEC) : want;
}

/* The previous CPU if idle (warm caches); otherwise the default choice. */
s32 BPF_STRUCT_OPS(batch_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	if (scx_bpf_test_and_clear_cpu_idle(prev_cpu)) {
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, slice_ns(), 0);
		return prev_cpu;
	}
	return schedcp_select_idle_direct(p, prev_cpu, wake_flags, slice_ns());
}

/* Weighted vtime order, with a sleeper's credit capped at one slice. No preemption. */
void BPF_STRUCT_OPS(batch_enqueue, struct task_struct *p, u64 enq_flags)
{
	u64 vtime = p->scx.dsq_vtime, lag = slice_ms * NSEC_PER_MSEC;

	if (time_before(vtime, vtime_now - lag))
		vtime = vtime_now - lag;
	scx_bpf_dsq_insert_vtime(p, SHARED_DSQ, slice_ns(), vtime, enq_flags);
}

void BPF_STRUCT_OPS(batch_dispatch, s32 cpu, struct task_struct *prev)
{
	scx_bpf_dsq_move_to_local(SHARED_DSQ);
}

void BPF_STRUCT_OPS(batch_running, struct task_struct *p)
{
	if (time_before(vtime_now, p->scx.dsq_vtime))
		vtime_now = p->scx.dsq_vtime;
}

/* Charge what was used, inversely to weight. */
void BPF_STRUCT_OPS(batch_stopping, struct task_struct *p, bool runnable)
{
	u64 given = slice_ms * NSEC_PER_MSEC;
	u64 used = given > p->scx.slice ? given - p->scx.slice : 0;

	p->scx.dsq_vtime += used * 100 / (p->scx.weight ? p->scx.weight : 100);
}

void BPF_STRUCT_OPS(batch_enable, struct task_struct *p)
{
	p->scx.dsq_vtime = vtime_now;
}

s32 BPF_STRUCT_OPS_SLEEPABLE(batch_init)
{
	return scx_bpf_create_dsq(SHARED_DSQ, -1);
}

SCHEDCP_DEFINE_EXIT(batch)

SEC(".struct_ops.link")
struct sched_ext_ops batch_ops = {
	.select_cpu	= (void *)batch_select_cpu,
	.enqueue	= (void *)batch_enqueue,
	.dispatch	= (void *)batch_dispatch,
	.running	= (void *)batch_running,
	.stopping	= (void *)batch_stopping,
	.enable		= (void *)batch_enable,
	.init		= (void *)batch_init,
	.exit		= (void *)batch_exit,
	.timeout_ms	= 5000,
	.name		= "schedcp_batch",
};
