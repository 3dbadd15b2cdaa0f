/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Broken on purpose: strict priority. Niced tasks (weight below 100) go to a low queue
 * that is only served when the high queue is empty, so with CPU hogs at nice 0 they
 * never run. Every static rule holds and the kernel verifier accepts it; the watchdog
 * (30 s) is too slow to notice. Expected: rejected by the dynamic stage (starvation).
 */
#include <schedcp/scx.bpf.h>

char _license[] SEC("license") = "GPL";

#define HIGH_DSQ 1
#define LOW_DSQ 2

const volatile u64 slice_us = 10000;

s32 BPF_STRUCT_OPS_SLEEPABLE(starve_init)
{
	s32 err = scx_bpf_create_dsq(HIGH_DSQ, -1);

	return err ? err : scx_bpf_create_dsq(LOW_DSQ, -1);
}

void BPF_STRUCT_OPS(starve_enqueue, struct task_struct *p, u64 enq_flags)
{
	u64 dsq = p->scx.weight < 100 ? LOW_DSQ : HIGH_DSQ;

	scx_bpf_dsq_insert(p, dsq, slice_us * NSEC_PER_USEC, enq_flags);
}

/* Strict priority: the low queue is served only when nothing at all waits in the high one
 * (not merely nothing this CPU may run), so niced tasks starve behind any nice-0 hog. */
void BPF_STRUCT_OPS(starve_dispatch, s32 cpu, struct task_struct *prev)
{
	if (scx_bpf_dsq_nr_queued(HIGH_DSQ) > 0) {
		scx_bpf_dsq_move_to_local(HIGH_DSQ);
		return;
	}
	scx_bpf_dsq_move_to_local(LOW_DSQ);
}

SCHEDCP_DEFINE_EXIT(starve)

SEC(".struct_ops.link")
struct sched_ext_ops starve_ops = {
	.enqueue	= (void *)starve_enqueue,
	.dispatch	= (void *)starve_dispatch,
	.init		= (void *)starve_init,
	.exit		= (void *)starve_exit,
	.timeout_ms	= 30000,
	.name		= "broken_starves_class",
};
