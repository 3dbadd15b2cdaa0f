/* SPDX-License-Identifier: GPL-2.0 */
/*
 * fifo: one global queue, first come first served.
 *
 * The simplest useful sched_ext scheduler. Every runnable task goes to the tail of the
 * shared global DSQ; each CPU takes from its head. No priorities, no fairness beyond
 * arrival order, so a CPU hog can only hold a CPU for one slice.
 */
#include <schedcp/scx.bpf.h>

char _license[] SEC("license") = "GPL";

const volatile u64 slice_us = 20000;

/* Keep the task's previous CPU when it is idle; the default picker knows the topology. */
s32 BPF_STRUCT_OPS(fifo_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);

	/* An idle CPU can run the task right away, skipping the global queue. */
	if (is_idle)
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, slice_us * NSEC_PER_USEC, 0);
	return cpu;
}

/* Everything else joins the global queue in arrival order. */
void BPF_STRUCT_OPS(fifo_enqueue, struct task_struct *p, u64 enq_flags)
{
	scx_bpf_dsq_insert(p, SCX_DSQ_GLOBAL, slice_us * NSEC_PER_USEC, enq_flags);
}

SCHEDCP_DEFINE_EXIT(fifo)

SEC(".struct_ops.link")
struct sched_ext_ops fifo_ops = {
	.select_cpu	= (void *)fifo_select_cpu,
	.enqueue	= (void *)fifo_enqueue,
	.exit		= (void *)fifo_exit,
	.timeout_ms	= 5000,
	.name		= "schedcp_fifo",
};
